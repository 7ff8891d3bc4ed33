// The Runtime API changes the reconciler makes, as data: each renders to one command line and knows which answer
// means it worked (haproxy answers in prose, and differently per command).
import { isIPv6 } from 'node:net';
import { SERVER_OPTIONS } from './haproxy-config.js';
import { arg, type AdminState } from './runtime.js';

export type RuntimeCommand =
  /** A new server starts in maint (haproxy puts dynamic servers there), its health check disabled. */
  | { op: 'add-server'; backend: string; server: string; address: string; port: number }
  | { op: 'enable-health'; backend: string; server: string }
  | { op: 'set-addr'; backend: string; server: string; address: string; port: number }
  | { op: 'set-state'; backend: string; server: string; state: AdminState }
  /** Refused by haproxy while the server still has connections: the next pass tries again. */
  | { op: 'del-server'; backend: string; server: string }
  | { op: 'add-map'; map: string; key: string; value: string }
  | { op: 'set-map'; map: string; key: string; value: string }
  | { op: 'del-map'; map: string; key: string }
  | { op: 'set-rules'; app: string; token: string };

export function hostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export function formatCommand(c: RuntimeCommand): string {
  switch (c.op) {
    case 'add-server':
      return `add server ${arg(c.backend)}/${arg(c.server)} ${arg(hostPort(c.address, c.port))} ${SERVER_OPTIONS}`;
    case 'enable-health':
      return `enable health ${arg(c.backend)}/${arg(c.server)}`;
    case 'set-addr':
      return `set server ${arg(c.backend)}/${arg(c.server)} addr ${arg(c.address)} port ${c.port}`;
    case 'set-state':
      return `set server ${arg(c.backend)}/${arg(c.server)} state ${c.state}`;
    case 'del-server':
      return `del server ${arg(c.backend)}/${arg(c.server)}`;
    case 'add-map':
      return `add map ${arg(c.map)} ${arg(c.key)} ${arg(c.value)}`;
    case 'set-map':
      return `set map ${arg(c.map)} ${arg(c.key)} ${arg(c.value)}`;
    case 'del-map':
      return `del map ${arg(c.map)} ${arg(c.key)}`;
    case 'set-rules':
      return `fleetwave rules set ${arg(c.app)} ${arg(c.token)}`;
  }
}

/** null when `answer` says the command worked, else the answer as one line. */
export function commandFailure(c: RuntimeCommand, answer: string): string | null {
  const ok = (() => {
    switch (c.op) {
      case 'add-server':
        return answer.includes('New server registered');
      case 'del-server':
        return answer.includes('Server deleted');
      case 'set-addr':
        // "IP changed from … to …" or "no need to change the addr/port".
        return /changed|no need to change/i.test(answer);
      case 'del-map':
        // Already gone is what was wanted.
        return answer === '' || /key not found/i.test(answer);
      case 'set-rules':
        return answer === 'ok';
      default:
        return answer === '';
    }
  })();
  return ok ? null : answer.replace(/\s*\n\s*/g, ' ').trim() || '(no answer)';
}
