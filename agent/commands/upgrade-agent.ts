// UpgradeAgent: fetch, verify and unpack an agent package into agent-versions/<version>/ and stage it in next.json;
// the dispatcher then hands over to the keeper (docs/agent-upgrade.md). Without a keeper the agent refuses.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BadInputError, ConflictError, PackageError } from '../../common/errors.js';
import type { UpgradeAgent } from '../../proto/gen/fleetwave/v1/agent.js';
import { isSea } from '../../common/artifact.js';
import { isSafeName } from '../options.js';
import { extractPackage } from '../package/extract.js';
import { ARTIFACT_NAMES, clearFailure, findArtifact, versionDir, versionsDir, writeNext } from '../upgrade/versions.js';
import { downloadWithRetry } from './download-package.js';
import type { CommandContext, CommandHandler } from './types.js';

/** Written beside the unpacked program: a later delivery of the same package skips the download. */
const MARKER = '.fleetwave-agent-package.json';

export const upgradeAgent: CommandHandler<'upgradeAgent'> = {
  kind: 'upgradeAgent',
  async run(ctx, body) {
    if (!ctx.keeper) throw new ConflictError('this agent runs without its keeper (start it with --self-upgrade): it cannot replace itself');
    if (!isSafeName(body.version)) throw new BadInputError(`agent version '${body.version}' is not a safe directory name`);
    const dir = versionDir(ctx.options.dataDir, body.version);
    const sha256 = body.sha256.toLowerCase();
    if ((await readMarker(dir)) !== sha256 || !findArtifact(dir, isSea())) await install(ctx, body, dir);
    const artifact = findArtifact(dir, isSea())!;
    // A new try: an earlier rollback report no longer describes this host.
    clearFailure(ctx.options.dataDir);
    await writeNext(ctx.options.dataDir, { version: body.version, artifact });
    ctx.logger.info({ version: body.version, artifact }, 'agent upgrade staged; handing over to the keeper once answered');
    return { restart: true };
  },
};

async function readMarker(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as { sha256?: string }).sha256;
  } catch {
    return undefined;
  }
}

async function install(ctx: CommandContext, body: UpgradeAgent, dir: string): Promise<void> {
  const root = versionsDir(ctx.options.dataDir);
  const suffix = randomBytes(4).toString('hex');
  const file = join(root, `.download-${body.version}-${suffix}.part`);
  const staging = join(root, `.tmp-${body.version}-${suffix}`);
  await mkdir(staging, { recursive: true });
  try {
    const sha256 = body.sha256.toLowerCase();
    await downloadWithRetry(ctx, { url: body.url, sha256, size: body.size, maxBytes: ctx.options.maxPackageBytes }, file);
    await extractPackage(file, staging, ctx.options.archiveLimits);
    const artifact = findArtifact(staging, isSea());
    if (!artifact && isSea() && findArtifact(staging)) {
      throw new PackageError(`agent package ${body.version} holds only a script, and this agent is a single executable (no node to run it): publish the package make dist builds (fleetwave-agent-VERSION.tar.gz, holding the fleetwave-agent executable)`);
    }
    if (!artifact) throw new PackageError(`agent package ${body.version} holds none of ${ARTIFACT_NAMES.join(', ')} at its top level`);
    if (basename(artifact) === 'fleetwave-agent') await chmod(artifact, 0o755);
    await writeFile(join(staging, MARKER), JSON.stringify({ version: body.version, sha256 }));
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } finally {
    await rm(file, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
