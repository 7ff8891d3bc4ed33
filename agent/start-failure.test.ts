// A start failure quotes the line that says why: the first error line of this start, not the runtime's last words.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppStartError, chooseErrorLine, logOffset, startErrorLine } from './start-failure.js';
import { tempDir } from './test-support.js';

const dir = tempDir('start-failure');
afterAll(() => dir.remove());

const NODE_EADDRINUSE = `node:events:497
      throw er; // Unhandled 'error' event
      ^

Error: listen EADDRINUSE: address already in use 127.0.0.1:12345
    at Server.setupListenHandle [as _listen2] (node:net:1908:16)
Emitted 'error' event on Server instance at:
  code: 'EADDRINUSE',
}

Node.js v20.20.2
`;

describe('chooseErrorLine', () => {
  it.each([
    ['Node\'s EADDRINUSE dump', NODE_EADDRINUSE, 'Error: listen EADDRINUSE: address already in use 127.0.0.1:12345'],
    ['a Java exception', 'starting\nException in thread "main" java.lang.IllegalStateException: boom\n\tat Main.main(Main.java:3)\n', 'Exception in thread "main" java.lang.IllegalStateException: boom'],
    ['a line that only mentions an error', 'starting\nlogged 0 errors so far\nbye\n', 'logged 0 errors so far'],
    ['no error line: the last line', 'starting\nconfig missing, giving up\n\n', 'config missing, giving up'],
    ['nothing', '', ''],
  ])('%s', (_name, text, line) => {
    expect(chooseErrorLine(text)).toBe(line);
  });

  it('cuts a long line to 200 characters', () => {
    expect(chooseErrorLine(`error: ${'x'.repeat(500)}`)).toHaveLength(200);
  });
});

describe('startErrorLine', () => {
  it('reads only what this start wrote', () => {
    const log = join(dir.path, 'app.log');
    writeFileSync(log, 'Error: an older start failed\n');
    const offset = logOffset(log);
    appendFileSync(log, NODE_EADDRINUSE);
    const line = startErrorLine(log, offset);
    expect(line).toMatch(/EADDRINUSE/);
    expect(new AppStartError('x', line).portTaken).toBe(true);
    expect(new AppStartError('x', 'Error: boom').portTaken).toBe(false);
  });

  it('reads the whole log when it was rotated since', () => {
    const log = join(dir.path, 'rotated.log');
    writeFileSync(log, 'Exception: fresh\n');
    expect(startErrorLine(log, 10_000)).toBe('Exception: fresh');
    expect(startErrorLine(join(dir.path, 'missing.log'), 0)).toBe('');
  });
});
