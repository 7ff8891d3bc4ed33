// What an app running as --app-user may reach in the agent's data dir: its own edition files, read-only, and
// nothing else. The agent (root) keeps ownership; the app user's group gets traverse-only (x) on the data dir and
// apps/, and read (plus x where the owner has it) on the app's tree. State, credential and keys stay 0600 root,
// so the group bit on the data dir opens no file of the agent's.
//
//   <data-dir>/        root:<gid> 0710   credential.json, commands.jsonl … 0600 root
//     apps/            root:<gid> 0710
//       <app>/         root:<gid> 0750   app.log (the agent writes it), downloads/
//         editions/…   root:<gid> g+r, g+x on dirs and on files the owner may run
import { statSync } from 'node:fs';
import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export interface AppUser {
  user?: string;
  uid: number;
  gid: number;
}

/** Opens the path from the data dir down to `appDir` to the app user's group (traverse only above the app dir). */
export async function grantAppDir(dataDir: string, appDir: string, runAs: AppUser): Promise<void> {
  for (const dir of [dataDir, join(dataDir, 'apps')]) await setGroup(dir, runAs.gid, 0o710);
  await grantTree(appDir, runAs.gid);
}

/** Gives `gid` read access to a tree (an unpacked edition): g+r on everything, g+x on dirs and owner-executable files. */
export async function grantTree(root: string, gid: number, recursive = true): Promise<void> {
  const info = await lstat(root).catch(() => null);
  if (!info) return;
  await lchown(root, info.uid, gid);
  if (info.isSymbolicLink()) return;
  const mode = info.mode & 0o7777;
  const exec = info.isDirectory() || mode & 0o100 ? 0o010 : 0;
  await chmod(root, (mode | 0o040 | exec) & ~0o002);
  if (recursive && info.isDirectory()) for (const entry of await readdir(root)) await grantTree(join(root, entry), gid);
}

async function setGroup(dir: string, gid: number, mode: number): Promise<void> {
  const info = await lstat(dir);
  await lchown(dir, info.uid, gid);
  await chmod(dir, mode);
}

/**
 * Why `user` cannot open `dir` (an edition dir), or null when it can: the first directory on the way it may not
 * traverse or read. Exact for a child spawned with uid/gid, which has no supplementary groups (libuv drops them).
 */
export function whyUnreadable(dir: string, runAs: AppUser): string | null {
  const target = resolve(dir);
  const chain: string[] = [];
  for (let d = target; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    let info;
    try {
      info = statSync(d);
    } catch {
      return null; // Missing: the start fails with its own message.
    }
    const shift = info.uid === runAs.uid ? 6 : info.gid === runAs.gid ? 3 : 0;
    const bits = (info.mode >> shift) & 0o7;
    const need = d === target ? 0o5 : 0o1;
    if ((bits & need) !== need) {
      const who = runAs.user ? `user ${runAs.user} (uid ${runAs.uid})` : `uid ${runAs.uid}`;
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
      return `${who} cannot ${d === target ? 'read' : 'traverse'} ${d} (mode ${mode}, owner ${info.uid}:${info.gid})`;
    }
  }
  return null;
}
