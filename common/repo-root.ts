// The checkout a build script or test runs from: the nearest directory above `fromUrl` holding fleetwave's
// package.json, whether the caller runs from source (vitest) or from dist/ (which has no package.json of its own).
// Build and test code only: a bundle or an installed package has no checkout.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRootAbove(fromUrl: string): string {
  const from = dirname(fileURLToPath(fromUrl));
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fleetwave') return dir;
    if (dirname(dir) === dir) throw new Error(`no fleetwave package.json above ${from}`);
  }
}
