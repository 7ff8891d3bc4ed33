// The successor's side of a hand-over (gate-host-main.js started with an IPC channel by an older gate host): takes
// the gates, listening sockets and client connections it passes (see gate-handover.ts), then serves gate.sock.
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { FromSuccessor, ToSuccessor } from './gate-handover.js';
import type { GateHost } from './gate-host.js';

export function takeOver(host: GateHost, logger: Logger): void {
  /** Listening sockets by app, held without accepting until the commit. */
  const sockets = new Map<string, object>();
  let committed = false;
  let serving = false;

  const step = async (message: ToSuccessor, handle: unknown): Promise<FromSuccessor> => {
    switch (message.kind) {
      case 'gate':
        host.takeGate(message.spec, message.history);
        if (handle) sockets.set(message.spec.app, handle as object);
        return { kind: 'gate-opened', app: message.spec.app };
      case 'commit':
        committed = true;
        for (const [app, socket] of sockets) await host.gateOf(app).listenOn(socket);
        logger.info({ gates: [...sockets.keys()] }, 'accepting on the sockets handed over');
        return { kind: 'accepting' };
      case 'connection':
        if (handle) host.gateOf(message.app).adoptConnection(handle as Socket);
        return { kind: 'connection-taken' };
      case 'control':
        await host.start();
        serving = true;
        return { kind: 'serving' };
    }
  };
  // Answers go out in order: each message is answered before the old host sends the next of its kind.
  process.on('message', (message: ToSuccessor, handle: unknown) => {
    void step(message, handle).then(
      (answer) => process.send?.(answer),
      (err: Error) => process.send?.({ kind: 'failed', error: err.message } satisfies FromSuccessor),
    );
  });
  process.once('disconnect', () => {
    if (serving) return logger.info('hand-over done: the old gate host hung up');
    if (!committed) return void host.shutdown('the old gate host hung up before the hand-over committed');
    // The ports are ours alone now: serve gate.sock anyway, so an agent can reach the gates.
    logger.error('the old gate host hung up mid hand-over; serving gate.sock anyway');
    host.start().catch((err: Error) => logger.error({ err: err.message }, 'could not serve gate.sock'));
  });
  process.send?.({ kind: 'ready', protocol: host.protocol } satisfies FromSuccessor);
}
