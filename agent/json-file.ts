// A JSON file replaced atomically (write temp, fsync, rename, fsync dir), with concurrent saves coalesced.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export class JsonFile<T> {
  private latest: T | undefined;
  private dirty = false;
  private writing: Promise<void> | undefined;

  constructor(readonly path: string) {}

  /** The parsed file, `undefined` when it does not exist; a corrupt file is moved aside and reads as missing. */
  async read(): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      await rename(this.path, `${this.path}.corrupt-${Date.now()}`);
      return undefined;
    }
  }

  /** Resolves once a write holding `value` (or a later value) is durable. */
  save(value: T): Promise<void> {
    this.latest = value;
    this.dirty = true;
    if (!this.writing) this.writing = this.drain().finally(() => (this.writing = undefined));
    return this.writing;
  }

  /** Resolves when no write is pending. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      await writeAtomically(this.path, JSON.stringify(this.latest, null, 1));
    }
  }
}

/** Write temp, fsync, rename over `path`, fsync the directory: a reader sees the old or new file, never half. */
export async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
