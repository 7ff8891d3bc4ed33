// What the scale-benchmark driver and its simulator processes say to each other over the fork IPC channel.
//
//   driver ──fork(config)──▶ sim: 'ready' ◀── (keys made, NATS connected, channels built)
//   driver ──connect──▶ sim opens every session;  stats ⇄ counters;  mark: release timings start over;
//   driver ──timings──▶ sim: per-agent pipeline times and step turnarounds;  stop ──▶ sim closes and exits

export interface SimConfig {
  /** gRPC address of the controller (host:port). */
  controller: string;
  natsUrl: string;
  app: string;
  group: string;
  /** Agent ids are `${idPrefix}${index}` for index in [firstIndex, firstIndex + count). */
  idPrefix: string;
  firstIndex: number;
  count: number;
  sessionsPerChannel: number;
  /** Every command is answered this long after it arrived. */
  delayMs: number;
  /** Edition every instance runs at start (reported in Hello). */
  edition: string;
}

export type DriverMessage =
  | { type: 'connect' }
  | { type: 'stats' }
  | { type: 'mark' }
  | { type: 'timings' }
  | { type: 'stop' };

/** Counters since the simulator started; the driver takes differences. */
export interface SimCounters {
  /** Agents whose current stream was welcomed. */
  connected: number;
  /** Streams that ended after their Welcome (the controller closed them, or they broke). */
  streamsDropped: number;
  /** Sessions opened again after a stream ended. */
  reconnects: number;
  /** Streams cancelled because no Welcome came within 10 s (as the agent does). */
  welcomeTimeouts: number;
  commands: number;
  results: number;
  /** Commands delivered again and answered from the journal. */
  replays: number;
  events: number;
  heartbeats: number;
}

export interface SimTimings {
  /** [agent id, first pipeline command at, last result at] (Unix ms, fractional; 0: never). */
  agents: [string, number, number][];
  /** Result of one pipeline step to the next command of the same instance, in ms. */
  turnaroundsMs: number[];
}

export type SimMessage =
  | { type: 'ready' }
  | { type: 'stats'; counters: SimCounters }
  | { type: 'timings'; timings: SimTimings }
  | { type: 'error'; message: string };
