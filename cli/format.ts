// Tables, times and sizes as the admin verbs print them.
import Table from 'cli-table3';
import { formatDuration } from '../common/durations.js';

export { formatDuration };

/** A borderless table (kubectl style): easy to read, grep and diff in logs. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const t = new Table({
    head: head.map((h) => h.toUpperCase()),
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) t.push(row.map((cell) => String(cell)));
  // cli-table3 pads the last column; trailing blanks only make diffs noisy.
  return t.toString().split('\n').map((line) => line.trimEnd()).join('\n');
}

/** Local wall-clock time HH:MM:SS, or '-' for an unset (zero) time. */
export function formatTime(unixMs: number): string {
  if (!unixMs) return '-';
  const d = new Date(unixMs);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Local date and time YYYY-MM-DD HH:MM:SS, or '-'. */
export function formatDateTime(unixMs: number): string {
  if (!unixMs) return '-';
  const d = new Date(unixMs);
  const date = [d.getFullYear(), d.getMonth() + 1, d.getDate()].map((n) => String(n).padStart(2, '0')).join('-');
  return `${date} ${formatTime(unixMs)}`;
}

/** Time between two instants, '-' when either is unset. */
export function formatSpan(startMs: number, endMs: number): string {
  if (!startMs || !endMs) return '-';
  return formatDuration(Math.max(0, endMs - startMs));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function orDash(text: string | number | undefined): string {
  return text === undefined || text === '' || text === 0 ? '-' : String(text);
}

/**
 * JSON as `--output json` prints it: the proto objects with every field present
 * (a listing is the array of its objects, a single thing is its object).
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
