// Continuous clients on a service port, for the data-path suites: counts answers, refused connects and every other
// failure, until stopped. Fresh connections show a refused connect; keep-alive ones show a connection closed under
// a client (the race a gate must never start).
import http from 'node:http';

export interface ServiceLoadCounts {
  ok: number;
  refused: number;
  /** Every other failure: `STATUS body` or the error's message. */
  failed: string[];
  bodies: Set<string>;
}

export interface ServiceLoad {
  counts: ServiceLoadCounts;
  /** Stops sending; requests in flight finish and count. */
  stop(): Promise<ServiceLoadCounts>;
}

/** `clients` clients on `port`, one request in flight each, on fresh connections or on keep-alive ones. */
export function serviceLoad(port: number, options: { clients?: number; keepAlive?: boolean } = {}): ServiceLoad {
  const counts: ServiceLoadCounts = { ok: 0, refused: 0, failed: [], bodies: new Set() };
  const agent = options.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: options.clients ?? 4 }) : false;
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200) {
            counts.ok++;
            counts.bodies.add(body);
          } else counts.failed.push(`${res.statusCode} ${body}`);
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') counts.refused++;
        else counts.failed.push(err.message);
        resolve();
      });
    });
  const clients = Array.from({ length: options.clients ?? 4 }, async () => {
    while (running) await one();
  });
  return {
    counts,
    stop: async () => {
      running = false;
      await Promise.all(clients);
      if (agent) agent.destroy();
      return counts;
    },
  };
}
