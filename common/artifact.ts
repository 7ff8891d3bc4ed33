// What this process runs from: tsc's dist/ (ES modules), an esbuild bundle (one CommonJS file, deploy/dist/bundle.ts)
// or a Node single executable made from one. A bundle has no module files beside it, so a second process of the same
// program (the agent's gate host) is started as the artifact itself in a hidden mode.
/** Set by the bundler ('agent' or 'cli'); undefined under tsc's dist/ and vitest. */
declare const FLEETWAVE_BUNDLE: string | undefined;

/** True in a bundle or a single executable made from one. */
export const BUNDLED = typeof FLEETWAVE_BUNDLE === 'string';

/** Hidden first argument of a bundle or executable: `ARTIFACT __gate-host DATA_DIR` runs the gate host. */
export const GATE_HOST_MODE = '__gate-host';

/** The program and the arguments that run this artifact again, before its own arguments; undefined under dist/. */
export function selfCommand(): { execPath: string; args: string[] } | undefined {
  if (!BUNDLED) return undefined;
  // A single executable is its own program; a bundle is node plus the bundle's file.
  return { execPath: process.execPath, args: isSea() ? [] : [bundleFile()] };
}

/** True inside a Node single executable application. */
export function isSea(): boolean {
  if (!BUNDLED) return false;
  try {
    // node:sea exists from Node 20.12; a CommonJS bundle has a real require (dist/ never gets here).
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

function bundleFile(): string {
  // In a CommonJS bundle __filename is the bundle (in a single executable, the executable).
  return __filename;
}
