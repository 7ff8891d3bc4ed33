// A simulator process of the scale benchmark: `count` agents with real gRPC Session streams to the controller, over
// shared channels, answering commands like the real agent, publishing their signed instance events on NATS.
// Forked by scale-bench.ts, which drives it over IPC (scale-protocol.ts); it exits when the driver goes away.
//
// Cheap per agent, since it shares the cores with the controller: one 100 ms tick per process sends the heartbeats
// (each agent in its own slot of the interval, as independent agents spread them), checks Welcome deadlines and
// reconnects; one timer per process runs the delayed answers (a FIFO: every delay is the same); one NATS connection.
import { credentials, type ChannelOptions } from '@grpc/grpc-js';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { connect, headers, type NatsConnection } from 'nats';
import { agentSource, ingestSubject, instanceEvent, SIGNATURE_HEADER, signedBytes } from '../../common/events.js';
import { AgentServiceClient } from '../../proto/gen/fleetwave/v1/agent.js';
import { SimAgent, type SimHost } from './scale-agent.js';
import type { SimEvent } from './scale-commands.js';
import type { DriverMessage, SimConfig, SimCounters, SimMessage } from './scale-protocol.js';

/** The real agent's channel options (agent/session.ts), each channel with its own connection. */
const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 10_000,
  // Channels with equal options would share one connection through grpc-js's global subchannel pool.
  'grpc.use_local_subchannel_pool': 1,
};
const TICK_MS = 100;
/** Until a Welcome says otherwise (the agent's default). */
const DEFAULT_HEARTBEAT_MS = 5_000;
/** Sessions opened per turn of the event loop while connecting, so the first Welcomes are read meanwhile. */
const OPEN_CHUNK = 200;

class SimProcess implements SimHost {
  readonly counters: SimCounters = { connected: 0, streamsDropped: 0, reconnects: 0, welcomeTimeouts: 0, commands: 0, results: 0, replays: 0, events: 0, heartbeats: 0 };
  readonly bootId = randomUUID();
  readonly delayMs: number;
  readonly group: string;
  private readonly agents: SimAgent[] = [];
  private readonly channels: AgentServiceClient[] = [];
  private readonly welcomeBy = new Map<SimAgent, number>();
  private readonly reconnects = new Map<SimAgent, number>();
  /** Delayed answers in arrival order, with when each is due; `head` is the next to run. */
  private queue: { due: number; run: () => void }[] = [];
  private head = 0;
  private queueTimer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private ticks = 0;
  /** From the controller's Welcome (the same for every agent). */
  private heartbeatMs = DEFAULT_HEARTBEAT_MS;
  private turnarounds: number[] = [];
  private stopping = false;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly config: SimConfig,
    private readonly nc: NatsConnection,
  ) {
    this.delayMs = config.delayMs;
    this.group = config.group;
    const channelCount = Math.ceil(config.count / config.sessionsPerChannel);
    for (let c = 0; c < channelCount; c++) this.channels.push(new AgentServiceClient(config.controller, credentials.createInsecure(), CHANNEL_OPTIONS));
    for (let n = 0; n < config.count; n++) {
      const index = config.firstIndex + n;
      // Each agent signs its events with its own key, given in Hello, as agent/event-key.ts does.
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const instance = { app: config.app, servicePort: 20_000 + (index % 40_000), activeEdition: config.edition, keptEditions: [config.edition], processState: 'running', quiesced: false };
      const pid = 100_000 + index;
      this.agents.push(new SimAgent(`${config.idPrefix}${index}`, Math.floor(n / config.sessionsPerChannel), this, instance, pid, privateKey, publicKey.export({ type: 'spki', format: 'der' })));
    }
  }

  /** Opens every session, a chunk per turn of the event loop, and starts the tick. */
  connectAll(): void {
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    let next = 0;
    const chunk = (): void => {
      for (const end = Math.min(next + OPEN_CHUNK, this.agents.length); next < end; next++) this.agents[next]!.connect();
      if (next < this.agents.length && !this.stopping) setImmediate(chunk);
    };
    chunk();
  }

  open(agent: SimAgent) {
    return this.channels[agent.channel]!.session();
  }

  waitWelcome(agent: SimAgent, at: number): void {
    if (at > 0) this.welcomeBy.set(agent, at);
    else this.welcomeBy.delete(agent);
  }

  reconnectAt(agent: SimAgent, at: number): void {
    if (!this.stopping) this.reconnects.set(agent, at);
  }

  later(run: () => void): void {
    this.queue.push({ due: performance.now() + this.delayMs, run });
    if (!this.queueTimer) this.armQueue();
  }

  publish(agent: SimAgent, [reason, data]: SimEvent): void {
    const { event } = instanceEvent(agentSource(agent.id), this.config.app, agent.id, reason, data);
    const subject = ingestSubject(this.config.app, agent.id);
    const payload = this.encoder.encode(JSON.stringify(event));
    const h = headers();
    // As agent/events.ts through common/nats-outbox.ts: the id for JetStream's duplicate window, and the signature.
    h.set('Nats-Msg-Id', event.id);
    h.set(SIGNATURE_HEADER, sign(null, signedBytes(subject, payload), agent.key).toString('base64'));
    this.nc.publish(subject, payload, { headers: h });
    this.counters.events++;
  }

  heartbeatEvery(ms: number): void {
    if (ms > 0) this.heartbeatMs = ms;
  }

  turnaround(ms: number): void {
    this.turnarounds.push(ms);
  }

  mark(): void {
    this.turnarounds = [];
    for (const agent of this.agents) agent.resetTimings();
  }

  timings() {
    return {
      agents: this.agents.map((a): [string, number, number] => [a.id, a.firstCommandAt, a.lastResultAt]),
      turnaroundsMs: this.turnarounds,
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.tick);
    clearTimeout(this.queueTimer);
    for (const agent of this.agents) agent.close();
    for (const channel of this.channels) channel.close();
    await this.nc.flush().catch(() => {});
    await this.nc.close().catch(() => {});
  }

  private armQueue(): void {
    const next = this.queue[this.head];
    if (!next) {
      this.queue = [];
      this.head = 0;
      this.queueTimer = undefined;
      return;
    }
    this.queueTimer = setTimeout(() => {
      const now = performance.now();
      while (this.head < this.queue.length && this.queue[this.head]!.due <= now + 1) this.queue[this.head++]!.run();
      if (this.head > 10_000) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.armQueue();
    }, Math.max(0, next.due - performance.now()));
  }

  private onTick(): void {
    const now = Date.now();
    for (const [agent, at] of this.welcomeBy) {
      if (at > now) continue;
      this.welcomeBy.delete(agent);
      agent.welcomeTimedOut();
    }
    for (const [agent, at] of this.reconnects) {
      if (at > now || this.stopping) continue;
      this.reconnects.delete(agent);
      agent.connect();
    }
    const slots = Math.max(1, Math.round(this.heartbeatMs / TICK_MS));
    const slot = this.ticks++ % slots;
    for (let i = slot; i < this.agents.length; i += slots) this.agents[i]!.heartbeat();
  }
}

function send(message: SimMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as SimConfig;
  const nc = await connect({ servers: config.natsUrl, name: `fleetwave-scale-sim-${config.firstIndex}` });
  const sim = new SimProcess(config, nc);
  process.on('disconnect', () => void sim.stop().finally(() => process.exit(0)));
  process.on('message', (message: DriverMessage) => {
    if (message.type === 'connect') sim.connectAll();
    else if (message.type === 'stats') send({ type: 'stats', counters: { ...sim.counters } });
    else if (message.type === 'mark') sim.mark();
    else if (message.type === 'timings') send({ type: 'timings', timings: sim.timings() });
    else if (message.type === 'stop') void sim.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

main().catch((err: Error) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});

