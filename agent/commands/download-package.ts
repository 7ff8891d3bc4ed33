// DownloadPackage: fetch, verify and unpack an edition into apps/<app>/editions/<edition>/, then prune old editions.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadInputError, FleetwaveError, PackageError, UnavailableError } from '../../common/errors.js';
import type { DownloadPackage } from '../../proto/gen/fleetwave/v1/agent.js';
import { grantTree } from '../app-access.js';
import { isSafeName } from '../options.js';
import { editionDir, editionsDir, listEditions, MARKER_FILE, pruneEditions, readMarker, type EditionMarker } from '../package/editions.js';
import { extractPackage, type ArchiveLimits } from '../package/extract.js';
import { downloadVerified, type ExpectedPackage } from '../package/fetch.js';
import type { CommandContext, CommandHandler } from './types.js';

export const downloadPackage: CommandHandler<'downloadPackage'> = {
  kind: 'downloadPackage',
  async run(ctx, body) {
    const { instance } = ctx;
    const appDir = instance.appDir;
    if (!isSafeName(body.edition)) throw new BadInputError(`edition name '${body.edition}' is not a safe directory name`);
    const existing = await readMarker(appDir, body.edition);
    if (existing?.sha256 === body.sha256.toLowerCase()) {
      // Already unpacked by an earlier delivery or release: nothing to fetch (idempotent, and the basis of back-out).
      await prune(ctx, body);
      return {};
    }
    if (existing && (body.edition === instance.activeEdition || body.edition === instance.supervisor.edition)) {
      throw new PackageError(`edition ${body.edition} is installed with sha256 ${existing.sha256} and active; refusing to replace it with ${body.sha256}`);
    }
    await install(ctx, body);
    await prune(ctx, body);
    return {};
  },
};

async function install(ctx: CommandContext, body: DownloadPackage): Promise<void> {
  const appDir = ctx.instance.appDir;
  const suffix = randomBytes(4).toString('hex');
  const downloads = join(appDir, 'downloads');
  const file = join(downloads, `${body.edition}-${suffix}.part`);
  const staging = join(editionsDir(appDir), `.tmp-${body.edition}-${suffix}`);
  await mkdir(downloads, { recursive: true });
  await mkdir(staging, { recursive: true });
  try {
    const started = Date.now();
    await downloadWithRetry(ctx, { url: body.url, sha256: body.sha256.toLowerCase(), size: body.size, maxBytes: ctx.options.maxPackageBytes }, file);
    await unpack(body, file, staging, ctx.options.archiveLimits);
    const marker: EditionMarker = { edition: body.edition, sha256: body.sha256.toLowerCase(), size: body.size, format: body.format || 'tar.gz', installedAt: Date.now() };
    await writeFile(join(staging, MARKER_FILE), JSON.stringify(marker));
    const runAs = ctx.options.runAs;
    if (runAs) {
      // The app runs as --app-user: it must read what was unpacked as root (its parents were opened at start-up).
      await grantTree(editionsDir(appDir), runAs.gid, false);
      await grantTree(staging, runAs.gid);
    }
    const final = editionDir(appDir, body.edition);
    // A directory left without a matching marker (another sha256, or a hand-made one) is replaced whole.
    await rm(final, { recursive: true, force: true });
    await rename(staging, final);
    ctx.logger.info({ app: ctx.command.app, edition: body.edition, bytes: body.size, ms: Date.now() - started }, 'edition unpacked');
  } finally {
    await rm(file, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** The artifact endpoint is away while the controller restarts: transient failures are retried until the command's deadline. */
export async function downloadWithRetry(ctx: CommandContext, expected: ExpectedPackage, file: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadVerified(expected, file, ctx.signal, ctx.downloads);
    } catch (err) {
      if (ctx.signal.aborted || !isTransient(err)) throw err;
      const waitMs = Math.min(5_000, 250 * 2 ** attempt);
      ctx.logger.warn({ err: (err as Error).message, retryInMs: waitMs }, 'package download failed; retrying');
      await sleep(waitMs, undefined, { signal: ctx.signal });
    }
  }
}

/** Network failures and server errors pass; a bad package, a refused request (4xx) or a local disk error do not. */
function isTransient(err: unknown): boolean {
  if (err instanceof UnavailableError) return !/HTTP 4\d\d/.test(err.message);
  if (err instanceof FleetwaveError) return false;
  return !(err as NodeJS.ErrnoException).code;
}

async function unpack(body: DownloadPackage, file: string, staging: string, limits: ArchiveLimits): Promise<void> {
  const format = body.format || 'tar.gz';
  if (format === 'tar.gz') return extractPackage(file, staging, limits);
  if (format === 'file') {
    if (!isSafeName(body.fileName) || body.fileName === MARKER_FILE) throw new BadInputError(`file_name '${body.fileName}' is not a plain file name`);
    return rename(file, join(staging, body.fileName));
  }
  throw new BadInputError(`package format '${format}' is not tar.gz or file`);
}

async function prune(ctx: CommandContext, body: DownloadPackage): Promise<void> {
  const { instance } = ctx;
  const record = ctx.state.app(instance.app);
  const keep = body.keepEditions || ctx.options.keepEditions;
  const removed = await pruneEditions(instance.appDir, keep, [record.activeEdition, record.previousEdition, instance.supervisor.edition, body.edition]);
  if (removed.length > 0) ctx.logger.info({ app: instance.app, removed }, 'old editions removed');
  const kept = (await listEditions(instance.appDir)).map((e) => e.edition);
  await ctx.state.updateApp(instance.app, { keptEditions: kept });
}
