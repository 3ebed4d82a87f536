/**
 * Component test of the agent loop: memory datastore, fake kernel, fake programs. No namespaces:
 * converges from the lease list, follows joins and leaves, keeps the dataplane on a bad config,
 * and a restarted agent on the same kernel writes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { CONFIG_KEY } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import type { CommandRunner } from '../dataplane/command.js';
import { FakeKernel } from '../dataplane/fake-kernel.js';
import { MemoryDatastore } from '../datastore/memory/memory-store.js';
import type { Datastore } from '../datastore/types.js';
import { leaseKey, renderLeaseValue } from '../model/lease.js';
import { parseCidr } from '../net/ipv4.js';
import { Agent } from './agent.js';
import { AgentMetrics } from './health.js';
import type { AgentOptions } from './options.js';

const dir = mkdtempSync(path.join(tmpdir(), 'twill-agent-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `ip -json -batch` for underlay detection: the host is `address`/24 on eth0 with the default route. */
const underlayRunner = (address: string, address6?: string): CommandRunner => ({
  run: () => ({
    status: 0,
    stderr: '',
    stdout: `${JSON.stringify([{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }])}\n${JSON.stringify([
      { ifname: 'lo', mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
      {
        ifname: 'eth0',
        mtu: 1500,
        addr_info: [{ family: 'inet', local: address, prefixlen: 24 }, ...(address6 ? [{ family: 'inet6', local: address6, prefixlen: 64, scope: 'global' }] : [])],
      },
    ])}\n`,
  }),
});
/** node1: 192.0.2.11. */
const runner = underlayRunner('192.0.2.11');
const nftWrites: string[] = [];
const asyncRunner: AsyncCommandRunner = {
  run: async (argv, input) => {
    if (argv.includes('list')) return { status: 1, stdout: '', stderr: 'No such file or directory' };
    nftWrites.push(input ?? '');
    return { status: 0, stdout: '', stderr: '' };
  },
};

function options(n: number): AgentOptions {
  return {
    nodeName: 'node1',
    etcdEndpoints: ['http://127.0.0.1:2379'],
    subnetFile: path.join(dir, `subnet-${n}.env`),
    cniSocket: '',
    healthListen: '127.0.0.1:0',
    resyncIntervalSeconds: 1,
    logLevel: 'error',
  };
}

async function peer(store: MemoryDatastore, name: string, subnet: string, ip: string, mac: string): Promise<string> {
  const c = parseCidr(subnet, true);
  assert.ok(c);
  const key = leaseKey(c);
  const value = renderLeaseValue({ subnet: c, nodeName: name, publicIP: ip, backendType: 'vxlan', backendData: { vtepMac: mac, vni: '1' }, expiresAt: Date.now() + 3_600_000 });
  await store.create(key, value);
  return key;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const routesTo = (k: FakeKernel): string[] => k.state.routes.map((r) => `${r.dst.network >>> 24}.${(r.dst.network >>> 16) & 255}.${(r.dst.network >>> 8) & 255}.0/${r.dst.prefix}`).sort();

describe('Agent on a memory datastore and a fake kernel', () => {
  it('converges, follows leaves and joins, ignores a bad config, and restarts without writing', async () => {
    const store = new MemoryDatastore();
    const kernel = new FakeKernel();
    kernel.addForeignLink('eth0');
    await store.create(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }));
    const node2 = await peer(store, 'node2', '10.244.2.0/24', '192.0.2.12', '0e:54:c0:00:02:0c');
    await peer(store, 'node3', '10.244.3.0/24', '192.0.2.13', '0e:54:c0:00:02:0d');

    const log = pino({ level: 'silent' });
    const stop = new AbortController();
    const agent = new Agent({ options: options(1), store, kernel, runner, asyncRunner, log, metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running = agent.run(stop.signal);

    await until('the first reconcile', () => agent.ready().ok);
    assert.deepEqual(routesTo(kernel), ['10.244.2.0/24', '10.244.3.0/24']);
    assert.equal(kernel.state.fdb.length, 2);
    assert.equal(kernel.state.links.find((l) => l.name === 'twill.1')?.mtu, 1450);
    const env = readFileSync(options(1).subnetFile, 'utf8');
    assert.match(env, /^TWILL_NETWORK=10\.244\.0\.0\/16$/m);
    assert.match(env, /^TWILL_MTU=1450$/m);
    const own = agent.status().subnet;
    assert.ok(own && !['10.244.2.0/24', '10.244.3.0/24'].includes(own), `own subnet ${own} is free`);
    assert.ok(nftWrites.length >= 1, 'the nftables table was written');

    await store.delete(node2);
    await until('node2 to leave', () => routesTo(kernel).join() === '10.244.3.0/24');
    await peer(store, 'node4', '10.244.4.0/24', '192.0.2.14', '0e:54:c0:00:02:0e');
    await until('node4 to join', () => routesTo(kernel).includes('10.244.4.0/24'));

    const before = structuredClone(kernel.state);
    const current = await store.get(CONFIG_KEY);
    await store.update(CONFIG_KEY, '{"Network":"10.244.0.1/16"}', current?.modRevision ?? 0);
    await until('the config error', () => (agent.status().configError ?? '').includes('host bits'));
    await new Promise((r) => setTimeout(r, 1200)); // a resync period
    assert.deepEqual(kernel.state, before, 'an invalid config leaves the dataplane as it is');

    stop.abort();
    await running;
    assert.deepEqual(kernel.state, before, 'stopping leaves the dataplane in place');

    // A new agent on the same node, store and kernel: same lease, nothing to write.
    const fixed = await store.get(CONFIG_KEY);
    await store.update(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }), fixed?.modRevision ?? 0);
    const writesBefore = kernel.batches.length;
    const stop2 = new AbortController();
    const agent2 = new Agent({ options: options(2), store, kernel, runner, asyncRunner, log, metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running2 = agent2.run(stop2.signal);
    await until('the restarted agent to reconcile', () => agent2.ready().ok);
    assert.equal(agent2.status().subnet, own, 'same node, same subnet');
    assert.equal(agent2.status().lastReconcile?.changes, 0);
    assert.equal(kernel.batches.length, writesBefore, 'the restarted agent wrote nothing to the kernel');
    stop2.abort();
    await running2;
  });
});

/** twill_watch_up{watch} from the agent's registry. */
async function watchUp(metrics: AgentMetrics, watch: string): Promise<number | undefined> {
  return (await metrics.watchUp.get()).values.find((v) => v.labels.watch === watch)?.value;
}

describe('Agent watches that fail', () => {
  it('a watch that throws something the store does not define is restarted; /readyz and twill_watch_up say so meanwhile', async () => {
    const store = new MemoryDatastore();
    const kernel = new FakeKernel();
    kernel.addForeignLink('eth0');
    await store.create(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }));
    await peer(store, 'node2', '10.244.2.0/24', '192.0.2.12', '0e:54:c0:00:02:0c');
    // The leases watch breaks (a decoder bug, say) when asked to.
    let breakNext = false;
    const flaky: Datastore = {
      get: (k) => store.get(k),
      list: (p) => store.list(p),
      create: (k, v, o) => store.create(k, v, o),
      update: (k, v, r, o) => store.update(k, v, r, o),
      delete: (k, r) => store.delete(k, r),
      txn: (ops, o) => store.txn(ops, o),
      close: () => store.close(),
      watch: (prefix, from, signal, hooks) => {
        const inner = store.watch(prefix, from, signal, hooks);
        return (async function* () {
          for await (const ev of inner) {
            if (breakNext && prefix !== CONFIG_KEY) {
              breakNext = false;
              throw new TypeError('cannot read properties of undefined (decoder bug)');
            }
            yield ev;
          }
        })();
      },
    };
    const metrics = new AgentMetrics();
    const stop = new AbortController();
    const agent = new Agent({ options: options(3), store: flaky, kernel, runner, asyncRunner, log: pino({ level: 'silent' }), metrics, ensureSysctl: () => false });
    const running = agent.run(stop.signal);
    try {
      await until('the first reconcile', () => agent.ready().ok);
      assert.equal(await watchUp(metrics, 'leases'), 1);
      assert.equal(await watchUp(metrics, 'config'), 1);

      breakNext = true;
      await peer(store, 'node3', '10.244.3.0/24', '192.0.2.13', '0e:54:c0:00:02:0d');
      await until('node3 programmed after the watch restarted', () => routesTo(kernel).includes('10.244.3.0/24'));
      await peer(store, 'node4', '10.244.4.0/24', '192.0.2.14', '0e:54:c0:00:02:0e');
      await until('node4 programmed: the watch follows on', () => routesTo(kernel).includes('10.244.4.0/24'));
      assert.ok(agent.ready().ok);

      store.setUnavailable(true);
      await until('/readyz to fail while no watch is live', () => !agent.ready().ok);
      assert.match(agent.ready().reason, /no live (config|leases) watch/);
      assert.equal(await watchUp(metrics, 'leases'), 0);
      store.setUnavailable(false);
      await until('/readyz to recover', () => agent.ready().ok, 10_000);
      assert.equal(await watchUp(metrics, 'leases'), 1);
      assert.deepEqual(routesTo(kernel), ['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24']);
    } finally {
      stop.abort();
      await running;
    }
  });
});

/** The underlay of another host: 192.0.2.21/24 on eth0. */
const otherHostRunner = underlayRunner('192.0.2.21');

describe('Agent node identity', () => {
  it('a second host with the same node name is refused (readyz reason, metric, log) and the first keeps its lease', async () => {
    const store = new MemoryDatastore();
    await store.create(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }));
    const kernel1 = new FakeKernel();
    kernel1.addForeignLink('eth0');
    const kernel2 = new FakeKernel();
    kernel2.addForeignLink('eth0');
    const stop = new AbortController();
    const first = new Agent({ options: options(4), store, kernel: kernel1, runner, asyncRunner, log: pino({ level: 'silent' }), metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running1 = first.run(stop.signal);
    const lines: Array<{ level: number; msg: string; err?: string }> = [];
    const log = pino({ level: 'error' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string; err?: string }) });
    const metrics2 = new AgentMetrics();
    const secondDir = mkdtempSync(path.join(dir, 'second-host-'));
    const second = new Agent({
      options: { ...options(5), subnetFile: path.join(secondDir, 'subnet.env') },
      store,
      kernel: kernel2,
      runner: otherHostRunner,
      asyncRunner,
      log,
      metrics: metrics2,
      ensureSysctl: () => false,
    });
    let running2: Promise<void> | undefined;
    try {
      await until('the first host to be ready', () => first.ready().ok);
      const held = (await store.list('/twill/subnets/')).items;
      assert.equal(held.length, 1);
      running2 = second.run(stop.signal);
      await until('the second host to be refused', () => /^refused: node name node1 is held by another host/.test(second.ready().reason));
      assert.equal(second.ready().ok, false);
      assert.match(second.ready().reason, /lease 10\.244\.\d+\.0\/24 of 192\.0\.2\.11 .*this host is 192\.0\.2\.21/);
      assert.ok(((await metrics2.nodeNameConflicts.get()).values[0]?.value ?? 0) >= 1, 'twill_node_name_conflicts_total counts the refusal');
      assert.ok(lines.some((l) => l.level === 50 && l.msg === 'lease acquisition failed' && /held by another host/.test(l.err ?? '')), JSON.stringify(lines));
      await new Promise((r) => setTimeout(r, 1500)); // it keeps retrying: still refused, nothing flaps
      assert.deepEqual((await store.list('/twill/subnets/')).items, held, 'the first host\'s lease is untouched');
      assert.equal(second.status().subnet, undefined);
      assert.equal(kernel2.batches.length, 0, 'the refused agent wrote nothing to its kernel');
      assert.ok(first.ready().ok);
      assert.ok(((await metrics2.nodeNameConflicts.get()).values[0]?.value ?? 0) >= 2, 'every refused retry is counted');
    } finally {
      stop.abort();
      await running1;
      await running2;
    }
  });
});

describe('Agent backend and MTU switches', () => {
  it('republishes its lease attributes, rewrites TWILL_MTU and serves each peer by the backend it announces', async () => {
    const store = new MemoryDatastore();
    const kernel = new FakeKernel();
    kernel.addForeignLink('eth0');
    const vxlanConfig = (extra: Record<string, unknown> = {}) => JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', ...extra } });
    await store.create(CONFIG_KEY, vxlanConfig());
    const node2 = await peer(store, 'node2', '10.244.2.0/24', '192.0.2.12', '0e:54:c0:00:02:0c');
    const setConfig = async (text: string): Promise<void> => {
      const cur = await store.get(CONFIG_KEY);
      await store.update(CONFIG_KEY, text, cur?.modRevision ?? 0);
    };
    /** node2 switches too: its lease announces the other backend. */
    const setPeer = async (backendType: string): Promise<void> => {
      const cur = await store.get(node2);
      assert.ok(cur);
      const v = JSON.parse(cur.value) as Record<string, unknown>;
      await store.update(node2, JSON.stringify({ ...v, backendType, backendData: backendType === 'vxlan' ? { vtepMac: '0e:54:c0:00:02:0c', vni: '1' } : {} }), cur.modRevision);
    };
    const ownLease = async (): Promise<{ backendType: string; backendData: Record<string, string> }> => {
      const own = (await store.list('/twill/subnets/')).items.map((kv) => JSON.parse(kv.value) as { nodeName: string; backendType: string; backendData: Record<string, string> }).find((l) => l.nodeName === 'node1');
      assert.ok(own);
      return own;
    };
    const route2 = () => kernel.state.routes.find((r) => r.dst.network >>> 8 === ((10 << 16) | (244 << 8) | 2));
    const mtu = () => /^TWILL_MTU=(\d+)$/m.exec(readFileSync(options(6).subnetFile, 'utf8'))?.[1];
    const hasDevice = () => kernel.state.links.some((l) => l.name === 'twill.1');

    const stop = new AbortController();
    const agent = new Agent({ options: options(6), store, kernel, runner, asyncRunner, log: pino({ level: 'silent' }), metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running = agent.run(stop.signal);
    try {
      await until('the first reconcile', () => agent.ready().ok);
      assert.equal(route2()?.dev, 'twill.1');

      // vxlan -> host-gw while node2 still announces vxlan.
      await setConfig(JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'host-gw' } }));
      await until('node1 to announce host-gw', () => agent.status().backend === 'host-gw' && mtu() === '1500');
      for (let i = 0; i < 100 && (await ownLease()).backendType !== 'host-gw'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await ownLease().then((l) => [l.backendType, l.backendData]), ['host-gw', {}]);
      await until('the direct route to node2', () => route2()?.dev === 'eth0');
      assert.ok(hasDevice(), 'twill.1 stays while node2 still tunnels to this node');
      assert.deepEqual(agent.status().peers.map((p) => p.error), [undefined], 'node2 on vxlan is not a mismatch');
      await setPeer('host-gw');
      await until('twill.1 to go once no peer uses vxlan', () => !hasDevice());
      assert.equal(route2()?.dev, 'eth0');

      // host-gw -> vxlan: node1 first, node2 later.
      await setConfig(vxlanConfig());
      await until('node1 to announce vxlan', () => mtu() === '1450' && hasDevice());
      for (let i = 0; i < 100 && (await ownLease()).backendType !== 'vxlan'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await ownLease().then((l) => [l.backendType, l.backendData]), ['vxlan', { vtepMac: '0e:54:c0:00:02:0b', vni: '1' }]);
      assert.equal(route2()?.dev, 'eth0', 'node2 still on host-gw keeps its direct route');
      await setPeer('vxlan');
      await until('the vxlan route to node2', () => route2()?.dev === 'twill.1');

      // An MTU change: the device and TWILL_MTU follow.
      await setConfig(vxlanConfig({ MTU: 1400 }));
      await until('MTU 1400 on twill.1 and in the subnet file', () => kernel.state.links.find((l) => l.name === 'twill.1')?.mtu === 1400 && mtu() === '1400');
    } finally {
      stop.abort();
      await running;
    }
  });
});

describe('Agent dual stack', () => {
  it('after IPv6 is enabled, a restarted agent keeps its IPv4 subnet, adds an IPv6 one, announces --public-ipv6 and writes TWILL_IPV6_*', async () => {
    const store = new MemoryDatastore();
    const kernel = new FakeKernel();
    kernel.addForeignLink('eth0');
    await store.create(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }));
    const log = pino({ level: 'silent' });
    const stop = new AbortController();
    const agent = new Agent({ options: options(30), store, kernel, runner, asyncRunner, log, metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running = agent.run(stop.signal);
    await until('the first reconcile', () => agent.ready().ok);
    const own = agent.status().subnet;
    assert.equal(agent.status().subnet6, undefined);
    assert.doesNotMatch(readFileSync(options(30).subnetFile, 'utf8'), /IPV6/);
    const cfg = await store.get(CONFIG_KEY);
    await store.update(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', Backend: { Type: 'vxlan' } }), cfg?.modRevision ?? 0);
    await until('the running agent to report the layout change', () => /IPv6 layout changed/.test(agent.status().configError ?? ''));
    stop.abort();
    await running;

    const stop2 = new AbortController();
    const agent2 = new Agent({ options: { ...options(31), publicIpv6: '2001:db8::11' }, store, kernel, runner: underlayRunner('192.0.2.11', '2001:db8::11'), asyncRunner, log, metrics: new AgentMetrics(), ensureSysctl: () => false });
    const running2 = agent2.run(stop2.signal);
    await until('the restarted agent to reconcile', () => agent2.ready().ok);
    const s = agent2.status();
    assert.equal(s.subnet, own, 'IPv4 subnet kept (no renumbering)');
    assert.match(s.subnet6 ?? '', /^fd00:10:244:[0-9a-f]{1,2}::\/64$/);
    assert.equal(s.publicIPv6, '2001:db8::11');
    const env = readFileSync(options(31).subnetFile, 'utf8');
    assert.match(env, /^TWILL_IPV6_NETWORK=fd00:10:244::\/56$/m);
    assert.match(env, new RegExp(`^TWILL_IPV6_SUBNET=${(s.subnet6 ?? '').replace('::/64', '::1/64')}$`, 'm'));
    const { items } = await store.list('/twill/subnets/');
    assert.equal(items.length, 1, 'still one lease key');
    assert.match(items[0]?.value ?? '', /"ipv6Subnet":"fd00:10:244:[0-9a-f]+::\/64","publicIPv6":"2001:db8::11"/);
    assert.equal((await store.list('/twill/ipv6-subnets/')).items.length, 1);
    stop2.abort();
    await running2;
  });
});
