// Tells a TLS mismatch from an unreachable controller: a plaintext client at a TLS port (or the reverse) otherwise
// reads as "cannot reach", which sends the operator looking at firewalls instead of at --ca / --insecure.
import { connect as tlsConnect } from 'node:tls';

/** 'speaks-tls': we dialled plaintext, it answers TLS; 'speaks-plaintext': we dialled TLS, it is not TLS. */
export type TlsMismatch = 'speaks-tls' | 'speaks-plaintext';

const PLAINTEXT_PEER = /wrong version number|WRONG_VERSION_NUMBER|unknown protocol|packet length too long|http request/i;
const NOTHING_THERE = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN/;

/** What a failed connect's details reveal without another connection (TLS client, plaintext server). */
export function mismatchFromDetails(secure: boolean, details: string): TlsMismatch | null {
  return secure && PLAINTEXT_PEER.test(details) ? 'speaks-plaintext' : null;
}

/** The mismatch, if any: from the details, or for a plaintext client by trying one TLS handshake (certificate unchecked). */
export async function detectTlsMismatch(address: string, secure: boolean, details: string, timeoutMs = 1_500): Promise<TlsMismatch | null> {
  const known = mismatchFromDetails(secure, details);
  if (known || secure || NOTHING_THERE.test(details)) return known;
  return (await speaksTls(address, timeoutMs)) ? 'speaks-tls' : null;
}

/** Whether something at HOST:PORT completes a TLS handshake within `timeoutMs`. */
export function speaksTls(address: string, timeoutMs = 1_500): Promise<boolean> {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!match) return Promise.resolve(false);
  return new Promise((resolve) => {
    // Only the protocol is probed; nothing is sent over this connection, so the certificate need not be trusted.
    const socket = tlsConnect({ host: match[1], port: Number(match[2]), rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}
