// Who may watch the routing and ack it, on a controller with TLS and tokens: a router token (and an admin) may, and
// nothing else; a viewer may read the rules but neither watch nor ack (an ack the router never made would let an
// atomic release switch early); an operator adds rules.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCredentials } from '../../common/tls.js';
import { AdminServiceClient, type RoutingUpdate } from '../../proto/gen/fleetwave/v1/admin.js';
import { waitFor } from '../harness/fleet.js';
import { startSecureFleet, type SecureFleet } from './secure-fleet.js';

describe('routing roles on a secured controller', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-routing-auth-'));
  let fleet: SecureFleet;
  let client: AdminServiceClient;
  const tokens: Record<string, string> = {};

  const bearer = (token: string) => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  };

  /** The first message of a watch with this token, or its error. */
  const watchWith = (token: string) =>
    new Promise<{ update?: RoutingUpdate; error?: ServiceError }>((resolve) => {
      const stream = client.watchRouting({ apps: ['shop'], routerId: 'edge-1' }, bearer(token));
      stream.on('data', (update: RoutingUpdate) => {
        resolve({ update });
        stream.on('error', () => {});
        stream.cancel();
      });
      stream.on('error', (error: ServiceError) => resolve({ error }));
    });

  const ackWith = (token: string, version: number) =>
    new Promise<ServiceError | null>((resolve) => client.ackRouting({ routerId: 'edge-1', version }, bearer(token), (err) => resolve(err)));

  beforeAll(async () => {
    fleet = await startSecureFleet(dir);
    client = new AdminServiceClient(fleet.controller.grpcAddress, channelCredentials(fleet.caFile));
    const created = await fleet.cli(fleet.admin, ['app', 'create', 'shop', '--start', 'node server.js']);
    expect(created.code, created.stderr).toBe(0);
    for (const role of ['router', 'viewer', 'operator']) tokens[role] = await fleet.newToken(`${role}-1`, role);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets a router token watch and ack, and an admin too', async () => {
    const { update, error } = await watchWith(tokens.router!);
    expect(error).toBeUndefined();
    expect(update).toMatchObject({ full: true, apps: [expect.objectContaining({ app: 'shop', defaultEditions: [], instances: [] })] });
    expect(await ackWith(tokens.router!, update!.version)).toBeNull();
    expect((await watchWith(fleet.admin)).update?.full).toBe(true);
    expect(await ackWith(fleet.admin, update!.version)).toBeNull();
  });

  it('refuses the watch and the ack to a viewer and an operator', async () => {
    for (const role of ['viewer', 'operator']) {
      const { error } = await watchWith(tokens[role]!);
      expect(error?.code, role).toBe(status.PERMISSION_DENIED);
      expect(error?.details).toBe(`watchRouting needs the router role; token '${role}-1' is ${role}`);
      expect((await ackWith(tokens[role]!, 1))?.code, role).toBe(status.PERMISSION_DENIED);
    }
  });

  it('opens nothing else to a router token', async () => {
    const apps = await fleet.cli(tokens.router!, ['app', 'list']);
    expect(apps.code).toBe(1);
    expect(apps.stderr.trim()).toBe("fleetwave: not allowed: listApps needs the viewer role; token 'router-1' is router");
    const rules = await fleet.cli(tokens.router!, ['route', 'list', 'shop']);
    expect(rules.stderr).toMatch(/listRoutes needs the viewer role/);
  });

  it('lets a viewer list rules but only an operator add one', async () => {
    expect((await fleet.cli(tokens.viewer!, ['route', 'list', 'shop'])).code).toBe(0);
    const add = ['route', 'add', 'shop', '--edition', '1.0', '--percent', '5'];
    expect((await fleet.cli(tokens.viewer!, add)).stderr).toMatch(/addRoute needs the operator role/);
    // Past the role check, the controller judges the rule itself (no such edition here).
    const byOperator = await fleet.cli(tokens.operator!, add);
    expect(byOperator.code).toBe(2);
    expect(byOperator.stderr.trim()).toBe("fleetwave: edition '1.0' of app 'shop' does not exist");
  });

  it('shows the router role in the token list', async () => {
    const listed = await fleet.cli(fleet.admin, ['token', 'list', '-o', 'json']);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ name: 'router-1', role: 'router' }));
    await waitFor('the controller to log the refused watch', () => /admin call refused: role too low/.test(fleet.controllerLog()), 5_000);
  });
});
