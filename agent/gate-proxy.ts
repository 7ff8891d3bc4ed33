// Forwards one HTTP request or upgraded connection from the gate to the app's internal port, streaming both ways.
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** How a forwarding attempt ended, so the gate can count it and decide whether to hold the request. */
export type ForwardOutcome =
  /** The app answered (or the client went away); the response is done. */
  | 'done'
  /** Nothing listened on the internal port and nothing of the request was consumed: safe to hold and retry. */
  | 'refused';

export function forwardRequest(agent: http.Agent, port: number, req: IncomingMessage, res: ServerResponse, onEnd: (outcome: ForwardOutcome) => void, retried = false): void {
  let ended = false;
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
  let bodyStarted = false;
  const proxyReq = http.request({ agent, host: '127.0.0.1', port, method: req.method, path: req.url, headers: requestHeaders(req) });
  proxyReq.on('socket', (socket) => {
    // The body is piped only once connected, so a refused connection leaves it unread and the request can be retried.
    const start = (): void => {
      bodyStarted = true;
      req.pipe(proxyReq);
    };
    if (socket.connecting) socket.once('connect', start);
    else start();
  });
  proxyReq.on('response', (proxyRes) => {
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes));
    proxyRes.pipe(res);
    proxyRes.on('error', () => res.destroy());
  });
  proxyReq.on('error', (err: NodeJS.ErrnoException) => {
    if (ended) return;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return end('done');
    }
    if (err.code === 'ECONNREFUSED' && !bodyStarted) return end('refused');
    // A pooled keep-alive socket the app closed meanwhile: a bodyless request can go again on a fresh one.
    if (proxyReq.reusedSocket && !retried && !hasBody(req)) {
      ended = true;
      res.off('close', onClose);
      return forwardRequest(agent, port, req, res, onEnd, true);
    }
    sendError(res, 502, `gate could not reach the app: ${err.code ?? err.message}`);
    end('done');
  });
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

function requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
  }
  // Chunked request bodies are re-chunked by http.request; keep the framing hint so the app sees a body.
  if (req.headers['transfer-encoding'] && !req.headers['content-length']) headers['transfer-encoding'] = 'chunked';
  const peer = req.socket.remoteAddress;
  if (peer) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${peer}` : peer;
  return headers;
}

function responseHeaders(res: IncomingMessage): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
  }
  return headers;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
}

function rawRequestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
