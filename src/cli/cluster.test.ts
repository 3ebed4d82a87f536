import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_KEY } from '../common/constants.js';
import { MemoryDatastore } from '../datastore/memory/memory-store.js';
import { LeaseManager } from '../model/lease-manager.js';
import { parseClusterConfig } from '../model/cluster-config.js';
import { configGet, configSet, listNodes, renderNodes, renderStatus } from './cluster.js';

describe('twill config / twill nodes: dual stack', () => {
  it('config set stores the canonical dual-stack config; nodes shows the IPv6 columns only when a lease has v6', async () => {
    const store = new MemoryDatastore();
    assert.deepEqual(await configSet(store, '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244:0::/56"}'), []);
    const text = await configGet(store);
    assert.equal(text, '{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetLen":64,"Backend":{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":false}}');
    assert.deepEqual(await configSet(store, '{"Network":"10.244.0.0/16","EnableIPv6":true}'), ['IPv6Network: is required with EnableIPv6: true (e.g. fd00:10:244::/56)']);
    assert.equal((await store.get(CONFIG_KEY))?.value, text, 'a bad config changes nothing');

    const v4 = parseClusterConfig('{"Network":"10.244.0.0/16"}');
    assert.ok(v4.ok);
    const m4 = new LeaseManager({ store, config: v4.config });
    await m4.acquire({ name: 'a', publicIP: '192.0.2.1', backendType: 'vxlan', backendData: {} });
    const plain = renderNodes((await listNodes(store, { probe: false })).rows);
    assert.match(plain[0] ?? '', /^NAME\s+SUBNET\s+PUBLIC IP\s+BACKEND/);

    const dual = parseClusterConfig(text ?? '');
    assert.ok(dual.ok);
    await new LeaseManager({ store, config: dual.config }).acquire({ name: 'b', publicIP: '192.0.2.2', publicIPv6: '2001:db8::2', backendType: 'vxlan', backendData: {} });
    const { rows } = await listNodes(store, { probe: false });
    assert.match(rows.find((r) => r.name === 'b')?.subnet6 ?? '', /^fd00:10:244:[0-9a-f]+::\/64$/);
    const lines = renderNodes(rows);
    assert.match(lines[0] ?? '', /^NAME\s+SUBNET\s+IPV6 SUBNET\s+PUBLIC IP\s+PUBLIC IPV6\s+BACKEND/);
    assert.match(lines.find((l) => l.startsWith('a ')) ?? '', /^a\s+10\.244\.\d+\.0\/24\s+-\s+192\.0\.2\.1\s+-\s+vxlan/);
    assert.match(lines.find((l) => l.startsWith('b ')) ?? '', /fd00:10:244:[0-9a-f]+::\/64\s+192\.0\.2\.2\s+2001:db8::2\s+vxlan/);
    const status = renderStatus({ datastore: { endpoints: ['x'], ok: true }, nodes: 2, expiredLeases: 0, agent: { node: 'b', phase: 'running', subnet: '10.244.5.0/24', subnet6: 'fd00:10:244:5::/64', backend: 'vxlan', peers: [] } });
    assert.match(status.join('\n'), /subnet 10\.244\.5\.0\/24 fd00:10:244:5::\/64, backend vxlan/);
  });
});
