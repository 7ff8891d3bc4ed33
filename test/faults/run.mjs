// `make faults`: runs the fault suites alone, then prints one table (fault, trials, releases completed,
// duplicate executions, instances on a wrong edition, events lost, attacks accepted) from the rows the suites wrote.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-faults-report-'));
const run = spawnSync('node_modules/.bin/vitest', ['run', 'test/faults', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, FLEETWAVE_FAULTS_REPORT: dir },
});
const rows = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
rmSync(dir, { recursive: true, force: true });

const ORDER = ['controller', 'agent killed', 'agent not back', 'nats', 'stream', 'hard reset', 'disk', 'stolen', 'forged'];
const rank = (fault) => { const i = ORDER.findIndex((o) => fault.toLowerCase().startsWith(o)); return i < 0 ? ORDER.length : i; };
rows.sort((a, b) => rank(a.fault) - rank(b.fault));

const table = new Table({
  head: ['fault', 'trials', 'releases completed', 'duplicate executions', 'instances on a wrong edition', 'events lost', 're-runs after agent death', 'attacks accepted'],
  style: { head: [], border: [] },
});
for (const r of rows) {
  const releases = r.releases ? `${r.releasesCompleted}/${r.releases}` : '-';
  table.push([r.fault, r.trials, releases, r.duplicateExecutions, r.wrongEditions, r.eventsLost, r.rerunsAfterAgentDeath, r.accepted ?? '-']);
}
console.log('\nfleetwave faults\n' + table.toString());
for (const r of rows) if (r.notes) console.log(`- ${r.fault}: ${r.notes}`);
const bad = rows.filter((r) => r.duplicateExecutions || r.wrongEditions || r.eventsLost || r.accepted || r.releasesCompleted !== r.releases);
if (rows.length === 0) console.log('no fault rows were written (see the vitest output above)');
process.exit(run.status === 0 && bad.length === 0 && rows.length > 0 ? 0 : 1);
