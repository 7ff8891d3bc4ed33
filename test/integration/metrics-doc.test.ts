// docs/metrics.md lists exactly the series a real controller serves (names and types, scraped after two small
// releases so the histograms have samples), and every series the Grafana dashboard's exprs use is listed and served.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, repoPath, waitFor } from '../harness/fleet.js';
import { servicePort, START_TIMEOUT_MS } from './model/setup.js';

/** series name → type, from the table of docs/metrics.md. */
function documented(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(repoPath('docs/metrics.md'), 'utf8').split('\n')) {
    const m = /^\| `(fleetwave_[a-z_]+)` \| (counter|gauge|histogram) \|/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** family name → type, from the `# TYPE` lines of a Prometheus text exposition. */
function served(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** The series named in every `expr` of the dashboard, with a histogram's _bucket/_sum/_count read as the histogram. */
function dashboardSeries(families: Map<string, string>): Set<string> {
  const dashboard = JSON.parse(readFileSync(repoPath('deploy/grafana/fleetwave.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const names = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const [name] of target.expr.matchAll(/\bfleetwave_[a-z_]+\b/g)) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        names.add(family !== name && families.get(family) === 'histogram' ? family : name);
      }
    }
  }
  return names;
}

describe('docs/metrics.md and the dashboard against a real controller', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-metrics-'));
  const fleet = new Fleet(dir);
  const scrape = async () => (await fetch(`${fleet.controller!.httpUrl}/metrics`)).text();

  async function cli(args: string[]): Promise<string> {
    const result = await fleet.cli(args);
    expect(result.code, `fleetwave ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  beforeAll(async () => {
    // Given a controller, one agent, and an app released twice (the second release drains the first edition)
    await fleet.startNats();
    await fleet.startController();
    await fleet.startAgent('m1', 'blue', { shop: await servicePort() });
    await fleet.adminClient.waitForAgents(['m1'], 90_000);
    await cli(['app', 'create', 'shop', '--start', 'node server.js', '--stop-timeout', '2s', '--update-order', 'stop-first']);
    for (const edition of ['1.0', '1.1']) {
      const source = join(dir, 'src', edition);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages'), name: 'shop' });
      await cli(['edition', 'install', 'shop', edition, '--file', pkg.path]);
      const out = await cli(['release', 'create', 'shop', '--edition', edition, '--group', 'all', '--batches', '1', '--drain', '1s', '--health-timeout', '5s']);
      await fleet.adminClient.waitForRelease(out.trim().split(/\s+/).pop()!, ['Released'], 90_000);
    }
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves exactly the documented series, with the documented types, and the histograms have samples', async () => {
    // The drained event travels through NATS and may land just after the release's last status.
    const text = await waitFor('a drain duration sample', async () => {
      const body = await scrape();
      return /^fleetwave_drain_duration_seconds_count\{outcome="(drained|timed_out)"\} [1-9]/m.test(body) ? body : undefined;
    });
    expect(Object.fromEntries(served(text))).toEqual(Object.fromEntries(documented()));
    for (const histogram of ['fleetwave_step_duration_seconds', 'fleetwave_batch_duration_seconds']) {
      expect(text, histogram).toMatch(new RegExp(`^${histogram}_count\\{[^}]*\\} [1-9]`, 'm'));
    }
    expect(text).toMatch(/^fleetwave_batch_duration_seconds_count\{status="done"\} 2$/m);
    expect(text).toMatch(/^fleetwave_releases\{status="Released"\} 2$/m);
    expect(text).toMatch(/^fleetwave_agents_connected 1$/m);
    expect(text).toMatch(/^fleetwave_agents_unreachable 0$/m);
    // No label carries an instance or agent id.
    expect(text).not.toMatch(/"m1"/);
  });

  it('uses in the Grafana dashboard only series that are documented and served', async () => {
    const families = served(await scrape());
    const used = dashboardSeries(families);
    expect(used.size).toBeGreaterThan(15);
    const docs = documented();
    expect([...used].filter((name) => !docs.has(name)), 'not in docs/metrics.md').toEqual([]);
    expect([...used].filter((name) => !families.has(name)), 'not served').toEqual([]);
    const dashboard = JSON.parse(readFileSync(repoPath('deploy/grafana/fleetwave.json'), 'utf8'));
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list.find((v: { type: string }) => v.type === 'datasource')?.query).toBe('prometheus');
  });
});
