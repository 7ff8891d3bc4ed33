// `fleetwave ca init`: a self-signed CA and the controller's server certificate, for TLS on every gRPC port.
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { BadInputError } from '../../common/errors.js';
import { defaultSans, initCaDir, issueFromCaDir } from '../../common/tls.js';
import type { Io } from '../io.js';
import { collect } from '../options.js';

/** The group the packaged daemons run as (deploy/debian): `ca init` shares the controller's key with it. */
export const DAEMON_GROUP = 'fleetwave';

export function registerCaCommands(program: Command, io: Io): void {
  const ca = program.command('ca').description('certificate authority for TLS between controller, agents and CLI');
  ca.command('init')
    .description('create ca.crt/ca.key and controller.crt/controller.key (for localhost, 127.0.0.1, ::1, this hostname and --san)')
    .requiredOption('--dir <dir>', 'directory to write into')
    .option('--san <name>', 'another DNS name or IP address the controller is reached by (repeatable)', collect)
    .option('--group <group>', `group that may read the directory and controller.key (dir 0750, key 0640; ca.key stays 0600); default ${DAEMON_GROUP} when it exists and this runs as root, else none (dir 0700)`)
    .option('--force', 'replace an existing CA (every agent and CLI must then get the new ca.crt)')
    .action((flags: { dir: string; san?: string[]; group?: string; force?: boolean }) => {
      const group = caGroup(flags.group);
      const paths = initCaDir(flags.dir, { sans: flags.san ?? [], force: flags.force, gid: group?.gid });
      io.out(`CA and controller certificate written to ${flags.dir}${group ? ` (readable by group ${group.name}; ca.key by its owner only)` : ''}`);
      io.out(`  names: ${defaultSans(flags.san ?? []).join(', ')}`);
      io.out(`  controller: fleetwave controller --tls-dir ${flags.dir} --bootstrap-token-file ADMIN_TOKEN_FILE`);
      io.out(`  agents and CLI: --ca ${paths.caCert}   (keep ${paths.caKey} offline or at least private)`);
    });
  ca.command('issue')
    .description("a server certificate for another host signed by the CA (a NATS node's, for its tls block)")
    .requiredOption('--dir <dir>', 'the `ca init` directory holding ca.crt and ca.key')
    .requiredOption('--name <name>', 'the host name (or address) clients reach it by; the files are named after it')
    .option('--san <name>', 'another DNS name or IP address of that host (repeatable)', collect)
    .option('--out-dir <dir>', 'where <name>.crt and <name>.key go (default --dir)')
    .option('--group <group>', 'group that may read the key (0640; default 0600)')
    .option('--force', 'replace an existing key of that name')
    .action((flags: { dir: string; name: string; san?: string[]; outDir?: string; group?: string; force?: boolean }) => {
      const group = flags.group === undefined ? undefined : caGroup(flags.group);
      const paths = issueFromCaDir(flags.dir, { name: flags.name, sans: flags.san, outDir: flags.outDir, gid: group?.gid, force: flags.force });
      io.out(`certificate for ${[flags.name, ...(flags.san ?? [])].join(', ')} written: ${paths.cert}, ${paths.key}`);
    });
}

/**
 * The group `--group` names; without it, the daemons' group when it exists and we are root (a packaged host),
 * else none. A named group that does not exist is an error.
 */
export function caGroup(
  flag: string | undefined,
  lookup: (name: string) => number | undefined = groupId,
  isRoot = process.getuid?.() === 0,
): { name: string; gid: number } | undefined {
  if (flag !== undefined) {
    const gid = lookup(flag);
    if (gid === undefined) throw new BadInputError(`--group: no group '${flag}' on this host`);
    return { name: flag, gid };
  }
  if (!isRoot) return undefined;
  const gid = lookup(DAEMON_GROUP);
  return gid === undefined ? undefined : { name: DAEMON_GROUP, gid };
}

/** A group's id by name or number (getent, so NSS sources count); undefined when there is none. */
function groupId(name: string): number | undefined {
  const result = spawnSync('getent', ['group', name], { encoding: 'utf8' });
  const gid = Number(result.stdout?.split(':')[2]);
  return result.status === 0 && Number.isInteger(gid) ? gid : undefined;
}
