// TLS material for gRPC: a self-signed CA and certificates it signs (node-forge), and grpc-js credentials from PEM files.
//
// Keys are RSA 2048 made by Node's own crypto (fast, native); node-forge only builds and signs the X.509 certificates,
// so no openssl binary is needed.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ChannelCredentials, ServerCredentials, credentials } from '@grpc/grpc-js';
import forge from 'node-forge';
import { BadInputError, ConflictError } from './errors.js';
import { readFlagFile } from './flag-file.js';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** What `fleetwave ca init` writes into its directory. */
export const CA_FILES = { caCert: 'ca.crt', caKey: 'ca.key', serverCert: 'controller.crt', serverKey: 'controller.key' } as const;

const DAY_MS = 86_400_000;

function newKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem };
}

function baseCert(publicKey: forge.pki.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive, 16 random bytes: unique enough that two CAs' certificates never share a serial.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  const now = Date.now();
  // Backdated a little so hosts with a slightly slow clock accept it at once.
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  return cert;
}

/** A self-signed certificate authority. */
export function createCa(commonName = 'fleetwave CA', days = 3650): PemPair {
  const keys = newKeyPair();
  const cert = baseCert(keys.publicKey, days);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** A server certificate signed by `ca`, valid for every name and IP address in `sans`. */
export function issueServerCert(ca: PemPair, sans: string[], days = 825): PemPair {
  if (sans.length === 0) throw new BadInputError('a server certificate needs at least one name or address');
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = newKeyPair();
  const cert = baseCert(keys.publicKey, days);
  cert.setSubject([{ name: 'commonName', value: sans[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: sans.map((san) => (isIP(san) ? { type: 7, ip: san } : { type: 2, value: san })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** The names a controller certificate is made for: loopback, this host's name and the operator's extra ones. */
export function defaultSans(extra: string[] = []): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...extra].filter(Boolean))];
}

/**
 * `fleetwave ca init`: writes ca.crt/ca.key and controller.crt/controller.key into `dir`.
 * An existing CA key is kept unless `force`, so a second run cannot silently cut off every agent.
 *
 * With `gid` (the daemons' group, `fleetwave` on a packaged host) the controller running as that group's user
 * can read what it needs and nothing more:
 *
 *   dir/              <owner>:<gid> 0750
 *     ca.crt          0644          controller.crt  0644
 *     controller.key  <owner>:<gid> 0640
 *     ca.key          <owner> 0600  (signs certificates: the daemons never need it)
 *
 * Without `gid` the directory is private to its owner (0700, keys 0600), for a controller run as that user.
 */
export function initCaDir(dir: string, o: { sans?: string[]; force?: boolean; gid?: number } = {}): Record<keyof typeof CA_FILES, string> {
  const paths = Object.fromEntries(Object.entries(CA_FILES).map(([k, f]) => [k, join(dir, f)])) as Record<keyof typeof CA_FILES, string>;
  if (existsSync(paths.caKey) && !o.force) throw new ConflictError(`${paths.caKey} already exists (pass --force to replace the CA)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An existing directory (the package's postinst makes one) gets the same owner and mode as a new one.
  shareWithGroup(dir, o.gid, 0o750, 0o700);
  const ca = createCa();
  const server = issueServerCert(ca, defaultSans(o.sans));
  writePem(paths.caCert, ca.certPem, 0o644);
  writePem(paths.caKey, ca.keyPem, 0o600);
  writePem(paths.serverCert, server.certPem, 0o644);
  writePem(paths.serverKey, server.keyPem, 0o600);
  shareWithGroup(paths.serverKey, o.gid, 0o640, 0o600);
  return paths;
}

/**
 * `fleetwave ca issue`: a server certificate for another host (a NATS node, a second controller address) signed by
 * the CA in `dir`, written as `<outDir>/<name>.crt` and `.key` (key 0600, or 0640 to `gid`).
 */
export function issueFromCaDir(dir: string, o: { name: string; sans?: string[]; outDir?: string; gid?: number; force?: boolean }): { cert: string; key: string } {
  const caCert = join(dir, CA_FILES.caCert);
  const caKey = join(dir, CA_FILES.caKey);
  if (!existsSync(caKey)) throw new BadInputError(`--dir: no ${caKey} (run fleetwave ca init --dir ${dir} first, on the host that keeps the CA)`);
  if (!/^[A-Za-z0-9.:_-]+$/.test(o.name)) throw new BadInputError(`--name: expected a host name or address, got "${o.name}"`);
  const outDir = o.outDir ?? dir;
  const paths = { cert: join(outDir, `${o.name}.crt`), key: join(outDir, `${o.name}.key`) };
  if (existsSync(paths.key) && !o.force) throw new ConflictError(`${paths.key} already exists (pass --force to replace it)`);
  const ca = { certPem: readFileSync(caCert, 'utf8'), keyPem: readFileSync(caKey, 'utf8') };
  const server = issueServerCert(ca, [...new Set([o.name, ...(o.sans ?? [])])]);
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  writePem(paths.cert, server.certPem, 0o644);
  writePem(paths.key, server.keyPem, 0o600);
  shareWithGroup(paths.key, o.gid, 0o640, 0o600);
  return paths;
}

/** chown to (owner, gid) and chmod `groupMode`; without a gid, chmod `privateMode` only. */
function shareWithGroup(path: string, gid: number | undefined, groupMode: number, privateMode: number): void {
  if (gid === undefined) {
    chmodSync(path, privateMode);
    return;
  }
  try {
    chownSync(path, statSync(path).uid, gid);
  } catch (err) {
    throw new BadInputError(`--group: cannot give ${path} to group ${gid} (${(err as NodeJS.ErrnoException).code ?? String(err)}): run as root or as a member of that group`);
  }
  chmodSync(path, groupMode);
}

function writePem(path: string, pem: string, mode: number): void {
  writeFileSync(path, pem, { mode });
  chmodSync(path, mode);
}

/** The controller's TLS: its certificate and key (PEM files). */
export function serverCredentials(o: { certFile: string; keyFile: string }): ServerCredentials {
  const cert = readFlagFile(o.certFile, '--tls-cert');
  const key = readFlagFile(o.keyFile, '--tls-key');
  // Clients prove who they are with tokens, not client certificates, so none is requested.
  return ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false);
}

/** A client's TLS: trust `caFile` (the fleetwave CA) or, without one, the system's roots. */
export function channelCredentials(caFile: string | null, flag = '--ca'): ChannelCredentials {
  silenceIpServernameWarning();
  return credentials.createSsl(caFile ? readFlagFile(caFile, flag) : null);
}

let silenced = false;
/**
 * grpc-js sends the target host as TLS SNI even when it is an IP address (127.0.0.1:7400), and Node warns about
 * that (DEP0123) on stderr. The certificate is still checked against the IP SAN, so the warning is only noise in
 * one-line CLI output; every other warning still shows.
 */
function silenceIpServernameWarning(): void {
  if (silenced) return;
  silenced = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
