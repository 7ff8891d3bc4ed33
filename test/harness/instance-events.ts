// The instance events a suite watches on NATS, as they arrive: what dashboards see, without the stream's replay.
import { connect, type NatsConnection } from 'nats';

export interface SeenEvent {
  type: string;
  instance: string;
  data: Record<string, unknown>;
}

/** Connects to `url` and appends every instance event to `into`; close the connection when the suite ends. */
export async function recordInstanceEvents(url: string, into: SeenEvent[]): Promise<NatsConnection> {
  const nc = await connect({ servers: url });
  nc.subscribe('fleetwave.events.*.instance.*', {
    callback: (_err, msg) => {
      const event = msg.json<{ type: string; data: Record<string, unknown> }>();
      into.push({ type: event.type, instance: String(event.data.instance), data: event.data });
    },
  });
  // The subscription is on the server once a round trip has come back: no event published after this is missed.
  await nc.flush();
  return nc;
}
