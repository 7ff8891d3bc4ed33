// A TCP proxy between agents and the controller that a test can block (nothing passes, nothing is refused) or reset.
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly server: Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private readonly held: Socket[] = [];
  private blocked = false;

  /** `target` is read per connection: a restarted controller may be elsewhere. */
  constructor(private readonly target: () => { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }

  /** Connections opened while blocked (an agent that noticed the dead stream and dialed again). */
  get heldConnections(): number {
    return this.held.length;
  }

  /** As a firewall dropping packets: open connections go silent, new ones get no answer. */
  block(): void {
    this.blocked = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Lifts the block; connections that lived through it are dead (their peers gave up), held ones go through now. */
  unblock(): void {
    this.blocked = false;
    this.reset();
    for (const client of this.held.splice(0)) this.forward(client);
  }

  /** Resets every open connection. */
  reset(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.reset();
    for (const client of this.held.splice(0)) client.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => client.destroy());
    if (this.blocked) {
      client.pause();
      this.held.push(client);
      return;
    }
    this.forward(client);
  }

  private forward(client: Socket): void {
    const { host, port } = this.target();
    const upstream = connect(port, host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}
