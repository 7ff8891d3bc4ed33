// The agent's Ed25519 key pair for signing its events: made once, kept in the data dir (0600), public half sent in Hello.
//
// The controller checks every instance event against the key the agent gave over its authenticated gRPC session, so a
// NATS client that can publish on an agent's subject still cannot speak for it (docs/design.md, "Event trust").
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signedBytes } from '../common/events.js';

export const EVENT_KEY_FILE = 'event-key.pem';

export interface EventSigner {
  /** SPKI DER of the public key, as Hello carries it. */
  readonly publicKey: Buffer;
  /** Base64 Ed25519 signature over `<subject>\n<payload>`. */
  sign(subject: string, payload: Uint8Array): string;
}

/** Loads the key from `dataDir`, or creates it there (exclusive create, so two starts never write two keys). */
export function loadEventSigner(dataDir: string): EventSigner {
  const file = join(dataDir, EVENT_KEY_FILE);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    privateKey = generateKeyPairSync('ed25519').privateKey;
    try {
      writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (raced) {
      if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
      privateKey = createPrivateKey(readFileSync(file));
    }
  }
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return {
    publicKey,
    sign: (subject, payload) => sign(null, signedBytes(subject, payload), privateKey).toString('base64'),
  };
}
