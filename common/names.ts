// Names that become file or directory names on an agent (app and edition directories, a single-file package's name):
// one rule, checked by the CLI and the controller at the door and by the agent again before it writes.

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Letters, digits, '.', '_' and '-', starting with a letter or digit: no '/', no '..', no hidden file. */
export function isSafeName(name: string): boolean {
  return SAFE_NAME.test(name) && name !== '.' && name !== '..';
}
