// Forwards one HTTP request or upgraded connection from the gate to the app's internal port, streaming both ways.
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((name) => name.length));

/** How a forwarding attempt ended, so the gate can count it and decide whether to hold the request. */
export type ForwardOutcome =
  /** The app answered (or the client went away); the response is done. */
  | 'done'
  /** Nothing listened on the internal port and nothing of the request was consumed: safe to hold and retry. */
  | 'refused';

/** Forwards to 127.0.0.1:`port` (the app), or to `host` (a gate host handing over relays held requests to its successor). */
export function forwardRequest(agent: http.Agent, port: number, req: IncomingMessage, res: ServerResponse, onEnd: (outcome: ForwardOutcome) => void, retried = false, host = '127.0.0.1'): void {
  // The hot path: the raw header list is read once (req.headers would build an object), copied as a flat array,
  // and a bodyless request (most of them) is ended at once instead of piped.
  const head = requestHead(req, port);
  let ended = false;
  let bodyStarted = false;
  const end = (outcome: ForwardOutcome): void => {
    if (!ended) {
      ended = true;
      res.off('close', onClose);
      onEnd(outcome);
    }
  };
  const onClose = (): void => {
    if (!res.writableFinished) proxyReq.destroy();
    end('done');
  };
  res.on('close', onClose);
  const proxyReq = http.request({ agent, host, port, method: req.method, path: req.url, headers: head.headers });
  if (head.hasBody) {
    proxyReq.once('socket', (socket) => {
      // The body is piped only once connected, so a refused connection leaves it unread and the request can be retried.
      const start = (): void => {
        bodyStarted = true;
        req.pipe(proxyReq);
      };
      if (socket.connecting) socket.once('connect', start);
      else start();
    });
  } else proxyReq.end();
  proxyReq.on('response', (proxyRes) => {
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes.rawHeaders));
    relay(proxyRes, res);
  });
  proxyReq.on('error', (err: NodeJS.ErrnoException) => {
    if (ended) return;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return end('done');
    }
    if (err.code === 'ECONNREFUSED' && !bodyStarted) return end('refused');
    // A pooled keep-alive socket the app closed meanwhile: a bodyless request can go again on a fresh one.
    if (proxyReq.reusedSocket && !retried && !head.hasBody) {
      ended = true;
      res.off('close', onClose);
      return forwardRequest(agent, port, req, res, onEnd, true, host);
    }
    sendError(res, 502, `gate could not reach the app: ${err.code ?? err.message}`);
    end('done');
  });
}

/** proxyRes.pipe(res) with fewer listeners: the app's answer streams to the client, with back-pressure. */
function relay(from: IncomingMessage, to: ServerResponse): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
  from.on('error', () => to.destroy());
}

/** Passes an upgrade (websocket) through as two piped sockets; answers 502 when the app does not accept. */
export function forwardUpgrade(port: number, req: IncomingMessage, client: Socket, head: Buffer, onEnd: () => void): void {
  let ended = false;
  const end = (): void => {
    if (!ended) {
      ended = true;
      onEnd();
    }
  };
  const upstream = net.connect(port, '127.0.0.1');
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    upstream.write(rawRequestHead(req));
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream).pipe(client);
  });
  upstream.on('error', () => {
    if (!connected && client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else client.destroy();
  });
  client.on('error', () => upstream.destroy());
  // Websockets close with their own handshake first, so a FIN from either side ends the whole tunnel.
  client.on('end', () => upstream.destroy());
  upstream.on('end', () => client.destroy());
  upstream.on('close', () => {
    client.destroy();
    end();
  });
  client.on('close', () => {
    upstream.destroy();
    end();
  });
}

export function sendError(res: ServerResponse, status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
  if (res.headersSent || res.destroyed) return void res.destroy();
  const body = JSON.stringify({ status: status === 503 ? 'unavailable' : 'error', message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

interface RequestHead {
  /** Flat [name, value, ...] list, as rawHeaders: http.request takes it without building an object. */
  headers: string[];
  hasBody: boolean;
}

/** The request's headers minus hop-by-hop ones, with X-Forwarded-For extended by the client's address. */
function requestHead(req: IncomingMessage, port: number): RequestHead {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let forwardedFor: string | undefined;
  let host = false;
  let contentLength: string | undefined;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (isHopByHop(name)) {
      if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') chunked = true;
      continue;
    }
    if (name.length === 14 && name.toLowerCase() === 'content-length') contentLength = value;
    else if (name.length === 4 && name.toLowerCase() === 'host') host = true;
    else if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') {
      // Several X-Forwarded-For lines read as one comma-separated list (as req.headers joins them).
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    headers.push(name, value);
  }
  // A header list gets no default Host from http.request (an object did): an HTTP/1.0 client's request needs one.
  if (!host) headers.push('host', `127.0.0.1:${port}`);
  // Chunked request bodies are re-chunked by http.request; keep the framing hint so the app sees a body.
  if (chunked && contentLength === undefined) headers.push('transfer-encoding', 'chunked');
  const peer = req.socket.remoteAddress;
  if (peer) headers.push('x-forwarded-for', forwardedFor !== undefined ? `${forwardedFor}, ${peer}` : peer);
  else if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
  return { headers, hasBody: contentLength !== undefined ? contentLength !== '0' : chunked };
}

/** The app's response headers minus hop-by-hop ones, names and repeats as the app sent them. */
function responseHeaders(raw: string[]): string[] {
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!isHopByHop(raw[i]!)) headers.push(raw[i]!, raw[i + 1]!);
  }
  return headers;
}

/** Only names of a hop-by-hop header's length are lower-cased and looked up. */
function isHopByHop(name: string): boolean {
  return HOP_BY_HOP_LENGTHS.has(name.length) && HOP_BY_HOP.has(name.toLowerCase());
}

function rawRequestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
