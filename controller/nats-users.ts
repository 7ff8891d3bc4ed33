// The NATS side of agent credentials (--nats-agent-users): at enrolment the controller makes the agent a NATS user
// nkey and writes its public key, allowed to publish only on the agent's ingest subjects, into a nats-server users
// file; revoke and rekey take it out. After each rewrite nats-server is sent SIGHUP (--nats-reload-pid-file): on
// reload it closes the connections of users no longer in its config, and refuses them from then on. Without a pid
// file the controller only writes: under the packaged units, fleetwave-nats-users.path installs the file for
// nats-server and reloads it as root, so the controller needs no right over nats-server.
//
// nats-server 2.9 cannot `include` inside an array, so the file is a whole `authorization { users = [...] }` block
// (the operator's main config includes it at top level), starting with the entries of --nats-users-template.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { nkeys } from 'nats';
import { FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

export interface NatsAgentUser {
  agentId: string;
  /** The public user nkey ("U..."). */
  nkey: string;
}

const FILE_MODE = 0o640;

/** A fresh user nkey pair: the seed goes to the agent once, the public key into the users file. */
export function newAgentNkey(): { seed: string; publicKey: string } {
  const pair = nkeys.createUser();
  return { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
}

/** The users file's text: the template's entries, then one entry per agent that may publish its own events only. */
export function renderNatsUsers(template: string, agents: NatsAgentUser[]): string {
  const entries = agents.map(
    (a) => `    # agent ${a.agentId}\n    { nkey: ${a.nkey}, permissions: { publish: { allow: ["fleetwave.ingest.*.instance.${a.agentId}"] }, subscribe: { deny: [">"] } } }`,
  );
  const head = template.trim() ? template.trim().split('\n').map((l) => `    ${l}`).join('\n') + '\n' : '';
  return (
    '# Written by the fleetwave controller (--nats-agent-users); rewritten at every enrolment, revoke and rekey. Do not edit:\n' +
    '# put fixed users in --nats-users-template.\n' +
    `authorization {\n  users = [\n${head}${entries.join('\n')}${entries.length ? '\n' : ''}  ]\n}\n`
  );
}

export class NatsUsersFile {
  private lastWritten: string | undefined;

  constructor(
    private readonly o: { file: string; templateFile: string | null; reloadPidFile: string | null },
    private readonly log: Logger,
  ) {}

  /** Writes the file with the template's users only when it does not exist yet (the first start, before NATS is up). */
  ensureExists(): void {
    if (!existsSync(this.o.file)) writeFileAtomically(this.o.file, renderNatsUsers(this.template(), []));
  }

  /** Rewrites the file when `agents` changed it and has nats-server reload it (or warns that someone must). */
  sync(agents: NatsAgentUser[]): void {
    const text = renderNatsUsers(this.template(), agents);
    this.lastWritten ??= existsSync(this.o.file) ? readFileSync(this.o.file, 'utf8') : '';
    if (text === this.lastWritten) return;
    writeFileAtomically(this.o.file, text);
    this.lastWritten = text;
    this.reload();
  }

  private template(): string {
    return this.o.templateFile ? readFileSync(this.o.templateFile, 'utf8') : '';
  }

  private reload(): void {
    if (!this.o.reloadPidFile) {
      // Not a warning: with fleetwave-nats-users.path this is the normal case, and the controller cannot tell.
      this.log.info({ file: this.o.file }, 'NATS agent users written; nats-server applies them once reloaded (fleetwave-nats-users.path does both where enabled; else --nats-reload-pid-file or nats-server --signal reload)');
      return;
    }
    try {
      const pid = Number(readFileSync(this.o.reloadPidFile, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid in ${this.o.reloadPidFile}`);
      process.kill(pid, 'SIGHUP');
      this.log.info({ file: this.o.file, pid }, 'NATS agent users changed; nats-server told to reload');
    } catch (err) {
      this.log.error({ err: String(err), file: this.o.file }, 'NATS agent users changed but nats-server could not be told to reload: reload it by hand');
    }
  }
}

/** Temp file, fsync, rename: nats-server reloading at any moment reads the old file or the new one, never half. */
function writeFileAtomically(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temp, 'w', FILE_MODE);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new FleetwaveError(`--nats-agent-users: cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}
