// Builds the bench's JVM app (test/bench/jvm/Hello.java) into one jar per edition with the installed JDK.
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoPath } from '../harness/fleet.js';

const run = promisify(execFile);

/**
 * The app's start command: a small heap and the quick-start JIT, as a small service on a shared host would run.
 * TCP_NODELAY as services set it: the JDK server writes head and body apart, and Nagle against the client's delayed
 * ACK would add 40 ms to every answer, hiding the held times the bench measures.
 */
export const JVM_START = 'java -Dsun.net.httpserver.nodelay=true -Xmx64m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -jar hello.jar';

/** Whether `javac` and `jar` are on PATH. */
export async function haveJdk(): Promise<boolean> {
  try {
    await run('javac', ['-version']);
    await run('jar', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Compiles Hello.java once and packs `outDir/hello-<edition>.jar` per edition (each names its edition inside). */
export async function buildJars(outDir: string, editions: string[]): Promise<Record<string, string>> {
  const classes = join(outDir, 'classes');
  await rm(classes, { recursive: true, force: true });
  await mkdir(classes, { recursive: true });
  await run('javac', ['-d', classes, repoPath('test', 'bench', 'jvm', 'Hello.java')]);
  const jars: Record<string, string> = {};
  for (const edition of editions) {
    await writeFile(join(classes, 'edition.txt'), `${edition}\n`);
    const jar = join(outDir, `hello-${edition}.jar`);
    await run('jar', ['--create', '--file', jar, '--main-class', 'Hello', '-C', classes, '.']);
    jars[edition] = jar;
  }
  return jars;
}
