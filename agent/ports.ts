// Finds free TCP ports on 127.0.0.1: any (port 0), or one for an app's internal port.
import net from 'node:net';

/** Internal app ports come from below Linux's ephemeral range (32768+ by default), so an outbound
 * connection's local port can never be holding the port when the app binds it. */
const INTERNAL_RANGE = { from: 10_000, to: 20_000 } as const;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port for an app to listen on behind its gate, outside the ephemeral range when possible. */
export async function freeInternalPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = INTERNAL_RANGE.from + Math.floor(Math.random() * (INTERNAL_RANGE.to - INTERNAL_RANGE.from));
    if (await canBind(port)) return port;
  }
  return freePort();
}
