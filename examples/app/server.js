// The sample app fleetwave releases in the demo: plain Node, no dependencies.
// Its edition comes from FLEETWAVE_EDITION, else the VERSION file packaged beside it.
// For failure drills, a FAIL_HEALTH file beside it makes /healthz answer 500, and a
// FAIL_START file makes it exit with code 1 before it listens. GET /slow?ms=N answers after N ms, or as soon
// as a file named by ?until=NAME appears beside it (tests end a request in flight when they choose).
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const edition = process.env.FLEETWAVE_EDITION || readVersion();
const port = Number(process.env.PORT || 8080);
// Simulated start-up work (loading config, warming caches) before the app listens.
const startDelayMs = Number(process.env.START_DELAY_MS ?? 500);
let started = false;
let stopping = false;
const failHealth = existsSync(new URL('FAIL_HEALTH', here));
if (existsSync(new URL('FAIL_START', here))) {
  console.error(`edition ${edition}: FAIL_START present, exiting`);
  process.exit(1);
}

function readVersion() {
  try {
    return readFileSync(new URL('VERSION', here), 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function send(res, status, body) {
  // While stopping, close each connection after its answer so the process can exit.
  const headers = { 'content-type': 'application/json', ...(stopping ? { connection: 'close' } : {}) };
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

// For an app created with --drain-mode self: POST /quiesce (or SIGUSR2) turns /healthz to 503 so the load
// balancer stops sending, and GET /inflight reports the requests still being served, which the agent polls.
let quiesced = false;
let inFlight = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/inflight') return send(res, 200, { inFlight });
  if (url.pathname === '/quiesce' && req.method === 'POST') {
    quiesced = true;
    return send(res, 200, { quiesced, inFlight });
  }
  if (url.pathname === '/healthz') return send(res, failHealth ? 500 : started && !quiesced ? 200 : 503, { ok: started && !failHealth && !quiesced, edition });
  inFlight++;
  res.once('close', () => inFlight--);
  if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 1000) || 0, 600_000);
    const began = Date.now();
    const answer = (sleptMs) => {
      clearTimeout(timer);
      clearInterval(poll);
      send(res, 200, { edition, pid: process.pid, sleptMs });
    };
    const timer = setTimeout(() => answer(ms), ms);
    // For drills: ?until=NAME answers early once a file NAME exists beside the app, so a test decides when
    // a request in flight ends instead of racing its timer.
    const until = url.searchParams.get('until');
    const poll = until && /^[\w.-]+$/.test(until) ? setInterval(() => existsSync(new URL(until, here)) && answer(Date.now() - began), 20) : undefined;
    res.once('close', () => (clearTimeout(timer), clearInterval(poll)));
    return;
  }
  if (url.pathname === '/') return send(res, 200, { edition, pid: process.pid });
  send(res, 404, { error: 'not found' });
});

function stop(signal) {
  // Finish the requests in flight, refuse new connections, then exit.
  if (stopping) return;
  stopping = true;
  console.log(`edition ${edition}: ${signal}, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGUSR2', () => {
  quiesced = true;
});

setTimeout(() => {
  server.listen(port, '127.0.0.1', () => {
    started = true;
    console.log(`edition ${edition} listening on 127.0.0.1:${port} (pid ${process.pid})`);
  });
}, startDelayMs);
