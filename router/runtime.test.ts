// Parsers of haproxy 2.6's Runtime API answers (texts captured from haproxy 2.6.12), command lines and their replies.
import { describe, expect, it } from 'vitest';
import { commandFailure, formatCommand } from './runtime-commands.js';
import { adminStateOf, arg, parseBackendList, parseMapEntries, parseMapList, parseServersState, parseStatCsv, socketError } from './runtime.js';

const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 fw_shop_e0 1 i1 127.0.0.1 0 1 1 1 0 1 0 0 2 0 0 0 - 19001 - 0 0 - - 0
3 fw_shop_e0 2 i2 ::1 2 8 1 1 0 1 0 2 6 0 0 0 - 19002 - 0 0 - - 0
4 fw_shop_e1 1 i1 127.0.0.1 2 0 1 1 0 1 0 2 6 0 0 0 - 19001 - 0 0 - - 0
`;

describe('parsers', () => {
  it('reads show servers state by its header', () => {
    expect(parseServersState(SERVERS_STATE)).toEqual([
      { backend: 'fw_shop_e0', server: 'i1', address: '127.0.0.1', port: 19001, operational: 0, admin: 'maint' },
      { backend: 'fw_shop_e0', server: 'i2', address: '::1', port: 19002, operational: 2, admin: 'drain' },
      { backend: 'fw_shop_e1', server: 'i1', address: '127.0.0.1', port: 19001, operational: 2, admin: 'ready' },
    ]);
    expect(parseServersState('1')).toEqual([]);
    expect(() => parseServersState('Unknown command')).toThrow(/unexpected/);
  });

  it('maps admin state bits to ready, drain, maint', () => {
    expect([0, 0x01, 0x04, 0x08, 0x10, 0x09, 0x40].map(adminStateOf)).toEqual(['ready', 'maint', 'maint', 'drain', 'drain', 'maint', 'ready']);
  });

  it('reads map entries and the map list', () => {
    expect(parseMapEntries('0x563cef759b50 __default fw_shop_e0\n0x563cef759b90 2.0 fw_shop_e1')).toEqual(
      new Map([
        ['__default', 'fw_shop_e0'],
        ['2.0', 'fw_shop_e1'],
      ]),
    );
    const list = "# id (file) description\n0 (/tmp/hx/fw_shop.map) pattern loaded from file '/tmp/hx/fw_shop.map' used by map at file 'h.cfg' line 14. curr_ver=0 next_ver=0 entry_cnt=1";
    expect(parseMapList(list)).toEqual([{ id: '0', file: '/tmp/hx/fw_shop.map' }]);
    expect(parseBackendList('# name\nfw_shop_e0\nfw_shop_mix')).toEqual(['fw_shop_e0', 'fw_shop_mix']);
  });

  it('reads show stat CSV into records', () => {
    const rows = parseStatCsv('# pxname,svname,stot,status,\nfw_shop_e0,i1,12,UP,\nfw_shop_e0,BACKEND,12,UP,\n');
    expect(rows[0]).toMatchObject({ pxname: 'fw_shop_e0', svname: 'i1', stot: '12', status: 'UP' });
    expect(rows).toHaveLength(2);
  });
});

describe('commands', () => {
  it('renders command lines, escaping the CLI separator and refusing white space', () => {
    expect(formatCommand({ op: 'add-server', backend: 'fw_shop_e0', server: 'i1', address: '::1', port: 8080 })).toBe('add server fw_shop_e0/i1 [::1]:8080 check inter 2s fall 2 rise 2 pool-max-conn -1 pool-purge-delay 5s');
    expect(formatCommand({ op: 'set-map', map: '/run/fw_shop.map', key: '__default', value: 'fw_shop_e1' })).toBe('set map /run/fw_shop.map __default fw_shop_e1');
    expect(arg('a;b\\c')).toBe('a\\;b\\\\c');
    expect(() => arg('a b')).toThrow(/white space/);
    expect(() => arg('')).toThrow(/empty/);
  });

  it('reads each command kind\'s answer as success or a one-line failure', () => {
    const state = { op: 'set-state', backend: 'b', server: 's', state: 'drain' } as const;
    expect(commandFailure(state, '')).toBeNull();
    expect(commandFailure(state, 'No such server.')).toBe('No such server.');
    expect(commandFailure({ op: 'add-server', backend: 'b', server: 's', address: '1.2.3.4', port: 1 }, 'New server registered.')).toBeNull();
    expect(commandFailure({ op: 'del-server', backend: 'b', server: 's' }, 'Server still has connections attached to it, cannot remove it.')).toMatch(/connections/);
    expect(commandFailure({ op: 'del-map', map: 'm', key: 'k' }, 'Key not found.')).toBeNull();
    expect(commandFailure({ op: 'set-rules', app: 'shop', token: '-' }, 'error: bad\nmore')).toBe('error: bad more');
    expect(commandFailure({ op: 'set-addr', backend: 'b', server: 's', address: '1.2.3.4', port: 1 }, "IP changed from '1.1.1.1' to '1.2.3.4' by 'stats socket command'")).toBeNull();
  });

  it('names a socket that cannot be used in one line', () => {
    const enoent = Object.assign(new Error('connect ENOENT /x'), { code: 'ENOENT' });
    expect(socketError('/x', enoent).message).toBe('no haproxy admin socket at /x (is haproxy running with "stats socket /x level admin"?)');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(socketError('/x', refused).message).toMatch(/nothing listens/);
  });
});
