// `fleetwave ca init`: a self-signed CA and the controller's server certificate, for TLS on every gRPC port.
import type { Command } from 'commander';
import { defaultSans, initCaDir } from '../../common/tls.js';
import type { Io } from '../io.js';
import { collect } from '../options.js';

export function registerCaCommands(program: Command, io: Io): void {
  const ca = program.command('ca').description('certificate authority for TLS between controller, agents and CLI');
  ca.command('init')
    .description('create ca.crt/ca.key and controller.crt/controller.key (for localhost, 127.0.0.1, ::1, this hostname and --san)')
    .requiredOption('--dir <dir>', 'directory to write into (created with mode 0700)')
    .option('--san <name>', 'another DNS name or IP address the controller is reached by (repeatable)', collect)
    .option('--force', 'replace an existing CA (every agent and CLI must then get the new ca.crt)')
    .action((flags: { dir: string; san?: string[]; force?: boolean }) => {
      const paths = initCaDir(flags.dir, { sans: flags.san ?? [], force: flags.force });
      io.out(`CA and controller certificate written to ${flags.dir}`);
      io.out(`  names: ${defaultSans(flags.san ?? []).join(', ')}`);
      io.out(`  controller: fleetwave controller --tls-cert ${paths.serverCert} --tls-key ${paths.serverKey} --bootstrap-token-file ADMIN_TOKEN_FILE`);
      io.out(`  agents and CLI: --ca ${paths.caCert}   (keep ${paths.caKey} offline or at least private)`);
    });
}
