/**
 * Kubelet-scale parallelism on one node (110 pods at once) and crash safety (SIGKILL mid-ADD).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CNI_BIN, cniEnv, must, ping, sh, withScope, type Scope } from './harness.js';

const PODS = 110;

interface Reply {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** Starts the plugin in `host` without waiting; `killAfterMs` sends SIGKILL to it. */
function cniAsync(host: string, env: Parameters<typeof cniEnv>[0], config: unknown, killAfterMs?: number): Promise<Reply> {
  return new Promise((resolve) => {
    // nsenter --net (not ip netns exec): one exec less, and the PID we kill is the plugin itself.
    const child = spawn('nsenter', [`--net=/run/netns/${host}`, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...cniEnv(env), CNI_BIN], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (status, signal) => resolve({ status, signal, stdout }));
    child.stdin.end(JSON.stringify(config));
    if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
}

function ourVeths(host: string): string[] {
  return must(['ip', '-n', host, '-o', 'link', 'show', 'type', 'veth'])
    .split('\n')
    .map((l) => /^\d+: (twl[0-9a-f]{12})@/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

function reservations(dataDir: string, network: string): string[] {
  try {
    return readdirSync(path.join(dataDir, network)).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
  } catch {
    return [];
  }
}

function setup(s: Scope, network: string, subnet: string): { host: string; config: Record<string, unknown>; dataDir: string } {
  const host = s.netns('host');
  const dataDir = s.tmpdir('ipam');
  const config = {
    cniVersion: '1.1.0',
    name: network,
    type: 'twill',
    mtu: 1450,
    ipam: { type: 'twill', subnet, dataDir, subnetFile: path.join(dataDir, 'none.env') },
  };
  return { host, config, dataDir };
}

test(`${PODS} pods ADDed in parallel get distinct, reachable addresses; parallel DEL leaves nothing`, { timeout: 300_000 }, async () => {
  await withScope(async (s) => {
    const { host, config, dataDir } = setup(s, 'conc', '10.201.0.0/24');
    const pods = Array.from({ length: PODS }, (_, i) => ({ id: `pod${i}`, ns: s.netns(`p${i}-`) }));

    const t0 = Date.now();
    const adds = await Promise.all(pods.map((p) => cniAsync(host, { command: 'ADD', containerId: p.id, netns: `/run/netns/${p.ns}`, ifName: 'eth0' }, config)));
    console.log(`# ${PODS} parallel ADDs took ${Date.now() - t0} ms`);
    const ips = adds.map((r, i) => {
      assert.equal(r.status, 0, `ADD ${i} failed: ${r.stdout}`);
      const result = JSON.parse(r.stdout) as { ips: Array<{ address: string }> };
      return (result.ips[0]?.address ?? '').split('/')[0] as string;
    });
    assert.equal(new Set(ips).size, PODS, 'every pod has its own address');
    for (const ip of ips) assert.notEqual(ip, '10.201.0.1', 'gateway never handed out');
    assert.equal(reservations(dataDir, 'conc').length, PODS);
    assert.equal(ourVeths(host).length, PODS);

    const unreachable = ips.filter((ip) => !ping(host, ip, 1));
    assert.deepEqual(unreachable, [], 'every pod answers the node');
    // And pod to pod across the bridge, first to last.
    assert.ok(ping(pods[0]!.ns, ips[PODS - 1]!, 1), 'pod0 reaches the last pod');

    const t1 = Date.now();
    const dels = await Promise.all(pods.map((p) => cniAsync(host, { command: 'DEL', containerId: p.id, netns: `/run/netns/${p.ns}`, ifName: 'eth0' }, config)));
    console.log(`# ${PODS} parallel DELs took ${Date.now() - t1} ms`);
    dels.forEach((r, i) => assert.equal(r.status, 0, `DEL ${i} failed: ${r.stdout}`));
    assert.deepEqual(reservations(dataDir, 'conc'), []);
    assert.deepEqual(ourVeths(host), []);
    assert.deepEqual(readdirSync(path.join(dataDir, 'conc', 'by-attachment')), []);
  });
});

test('an ADD killed with SIGKILL at any point leaves nothing that GC does not clean', { timeout: 300_000 }, async () => {
  await withScope(async (s) => {
    const { host, config, dataDir } = setup(s, 'kill', '10.202.0.0/24');
    // A healthy pod that must survive everything below.
    const keepNs = s.netns('keep');
    const keep = await cniAsync(host, { command: 'ADD', containerId: 'keeper', netns: `/run/netns/${keepNs}`, ifName: 'eth0' }, config);
    assert.equal(keep.status, 0, keep.stdout);
    const keepIp = (JSON.parse(keep.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;

    // Kill ADDs at spread-out moments: before IPAM, between IPAM and the kernel, between the batches.
    const delays = [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 110, 130, 160];
    let killed = 0;
    for (const [i, ms] of delays.entries()) {
      const ns = s.netns(`k${i}-`);
      const r = await cniAsync(host, { command: 'ADD', containerId: `victim${i}`, netns: `/run/netns/${ns}`, ifName: 'eth0' }, config, ms);
      if (r.signal === 'SIGKILL') killed += 1;
    }
    console.log(`# ${killed} of ${delays.length} ADDs were killed mid-flight; ${reservations(dataDir, 'kill').length - 1} left a reservation, ${ourVeths(host).length - 1} a veth`);
    assert.ok(killed > 0, 'at least one ADD was really killed mid-flight');

    const gc = sh(['ip', 'netns', 'exec', host, 'env', '-i', ...cniEnv({ command: 'GC' }), CNI_BIN], JSON.stringify({ ...config, 'cni.dev/valid-attachments': [{ containerID: 'keeper', ifname: 'eth0' }] }));
    assert.equal(gc.status, 0, gc.stdout);
    assert.deepEqual(reservations(dataDir, 'kill'), [keepIp], 'only the valid pod keeps its address');
    assert.equal(ourVeths(host).length, 1, 'only the valid pod keeps its veth');
    // A killed plugin's temporary file is swept by age (PIDs are no evidence: they repeat across PID
    // namespaces), once older than the grace period: age the leftovers and GC again.
    const storeDir = path.join(dataDir, 'kill');
    const leftovers = readdirSync(storeDir).filter((n) => n.startsWith('.tmp-'));
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const n of leftovers) utimesSync(path.join(storeDir, n), hourAgo, hourAgo);
    assert.equal(sh(['ip', 'netns', 'exec', host, 'env', '-i', ...cniEnv({ command: 'GC' }), CNI_BIN], JSON.stringify({ ...config, 'cni.dev/valid-attachments': [{ containerID: 'keeper', ifname: 'eth0' }] })).status, 0);
    console.log(`# ${leftovers.length} temporary files of killed plugins, swept once aged`);
    assert.deepEqual(readdirSync(storeDir).filter((n) => n.startsWith('.tmp-') && !n.startsWith('.tmp-rel-')), [], 'no temporary files of dead plugins after the grace period');
    assert.deepEqual(reservations(dataDir, 'kill'), [keepIp]);
    assert.deepEqual(readdirSync(path.join(dataDir, 'kill', 'by-attachment')), ['keeper@eth0']);
    assert.ok(ping(keepNs, '10.202.0.1'), 'the valid pod still reaches its gateway');
  });
});

test('GC in a loop (this network with the valid list, another network with none) while 50 ADDs run: no ADD fails, no pod loses its veth', { timeout: 300_000 }, async () => {
  await withScope(async (s) => {
    const ADDS = 50;
    const { host, config, dataDir } = setup(s, 'race', '10.203.0.0/24');
    const other = { ...config, name: 'race-other', bridge: 'cni9', ipam: { ...(config.ipam as object), subnet: '10.204.0.0/24' } };
    const pods = Array.from({ length: ADDS }, (_, i) => ({ id: `rpod${i}`, ns: s.netns(`r${i}-`) }));
    const valid = pods.map((p) => ({ containerID: p.id, ifname: 'eth0' }));
    let stop = false;
    let gcs = 0;
    const gcFailures: string[] = [];
    const gcLoop = async (conf: Record<string, unknown>): Promise<void> => {
      while (!stop) {
        const r = await cniAsync(host, { command: 'GC' }, conf);
        gcs += 1;
        if (r.status !== 0) gcFailures.push(r.stdout);
      }
    };
    const loops = [gcLoop({ ...config, 'cni.dev/valid-attachments': valid }), gcLoop({ ...other, 'cni.dev/valid-attachments': [] }), gcLoop({ ...other, 'cni.dev/valid-attachments': [] })];
    const adds = await Promise.all(pods.map((p) => cniAsync(host, { command: 'ADD', containerId: p.id, netns: `/run/netns/${p.ns}`, ifName: 'eth0' }, config)));
    // GC keeps running a little after the last ADD: a finished pod must survive it too.
    const gcsAtEnd = gcs;
    while (gcs < gcsAtEnd + 6) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(loops);
    console.log(`# ${gcs} GC runs during ${ADDS} parallel ADDs`);
    assert.deepEqual(gcFailures, [], 'every GC succeeded');
    assert.deepEqual(adds.map((r, i) => (r.status === 0 ? '' : `ADD ${i}: ${r.stdout}`)).filter(Boolean), [], 'no ADD failed');
    assert.ok(gcs >= 9, 'GC really ran during the ADDs');
    const veths = new Set(ourVeths(host));
    assert.equal(veths.size, ADDS, 'every pod keeps its host veth');
    const lostPodSide = pods.filter((p) => sh(['ip', '-n', p.ns, 'link', 'show', 'dev', 'eth0']).status !== 0).map((p) => p.id);
    assert.deepEqual(lostPodSide, [], 'every pod keeps its eth0');
    const tmp = must(['ip', '-n', host, '-o', 'link', 'show']).split('\n').filter((l) => /^\d+: twn[0-9a-f]{12}/.test(l));
    assert.deepEqual(tmp, [], 'no veth left under a temporary name');
    assert.equal(reservations(dataDir, 'race').length, ADDS);
  });
});
