/**
 * A real container runtime drives twill-cni: containerd 1.6 + runc (Debian packages) run busybox
 * containers with `ctr run --cni`, which reads /etc/cni/net.d and /opt/cni/bin (private to the test
 * node, see containerd-env.ts) and runs the plugin through libcni at cniVersion 1.0.0.
 * Checked: the container gets the reserved address (and the MAC derived from it) on eth0, a default
 * route via the bridge gateway, talks to the gateway, to the node and to another container; while it
 * runs its IPAM reservation and host veth exist; when it exits, ctr's DEL (CNI_NETNS empty, the task
 * is gone) releases the address and the veth is gone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { must, sh, withScope } from './harness.js';
import { buildBusyboxImage, CTR_NAMESPACE, startContainerdNode, type ContainerdNode, type Run } from './containerd-env.js';

const IMAGE = 'docker.io/library/twill-busybox:1';
const NETWORK = 'twill-ctr';
const SUBNET_PREFIX = '10.231.7';
const GATEWAY = `${SUBNET_PREFIX}.1`;
const IFNAME = 'eth0';

function log(msg: string): void {
  console.log(`# containerd: ${msg}`);
}

function ok(r: Run, what: string): string {
  assert.equal(r.status, 0, `${what}: exit ${r.status} after ${r.ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** libcni's container ID for a ctr container: `<namespace>-<id>` (ctr's fullID). */
function cniId(id: string): string {
  return `${CTR_NAMESPACE}-${id}`;
}

function hostVeth(id: string): string {
  return `twl${createHash('sha256').update(`${cniId(id)}/${IFNAME}`).digest('hex').slice(0, 12)}`;
}

function podMac(ip: string): string {
  return `0a:58:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
}

interface Link {
  ifname: string;
  master?: string;
  ifalias?: string;
  operstate?: string;
}

function nodeLinks(node: ContainerdNode): Link[] {
  return JSON.parse(must(['ip', '-n', node.netns, '-json', 'link', 'show']) || '[]') as Link[];
}

/** The address the attachment holds, from the by-attachment symlink; undefined when none. */
function reservation(ipamNet: string, id: string): string | undefined {
  try {
    return path.basename(readlinkSync(path.join(ipamNet, 'by-attachment', `${cniId(id)}@${IFNAME}`)));
  } catch {
    return undefined;
  }
}

function reservedAddresses(ipamNet: string): string[] {
  return existsSync(ipamNet) ? readdirSync(ipamNet).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}

async function waitFor<T>(what: string, ms: number, get: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await sleep(200);
  }
}

test('containerd + runc: ctr run --cni containers get their network from twill-cni', { timeout: 900_000 }, async () => {
  await withScope(async (s) => {
    const ipamDir = s.tmpdir('ctr-ipam');
    const ipamNet = path.join(ipamDir, NETWORK);
    const conflist = {
      cniVersion: '1.0.0',
      name: NETWORK,
      plugins: [{ type: 'twill', mode: 'bridge', bridge: 'cni0', ipam: { type: 'twill', subnet: `${SUBNET_PREFIX}.0/24`, dataDir: ipamDir, subnetFile: path.join(ipamDir, 'subnet.env') } }],
    };
    const hostConf = `/etc/cni/net.d/10-${NETWORK}.conflist`;
    const hostHadConf = existsSync(hostConf);

    let t0 = Date.now();
    const node = await startContainerdNode(s, { conflist });
    log(`containerd ${node.paths.socket} up in netns ${node.netns} after ${Date.now() - t0} ms`);
    try {
      t0 = Date.now();
      const tar = buildBusyboxImage(s, IMAGE);
      ok(node.ctr(['images', 'import', tar]), 'ctr images import');
      const images = ok(node.ctr(['images', 'list', '--quiet']), 'ctr images list');
      assert.match(images, new RegExp(IMAGE.replace(/[.:/]/g, '\\$&')));
      log(`image ${IMAGE} built and imported in ${Date.now() - t0} ms`);

      // 1. A long-running container, attached (so ctr itself runs CNI DEL when it exits).
      t0 = Date.now();
      const web = node.ctrInBackground(['run', '--rm', '--cni', IMAGE, 'web', 'sleep', '300']);
      const webIp = await waitFor('reservation of web', 120_000, () => {
        if (web.exited()) throw new Error('ctr run web exited early');
        return reservation(ipamNet, 'web');
      });
      await waitFor('task web running', 60_000, () => (/\bweb\s+\d+\s+RUNNING/.test(node.ctr(['tasks', 'list']).stdout) ? true : undefined));
      log(`web is RUNNING with ${webIp} after ${Date.now() - t0} ms`);
      assert.ok(webIp.startsWith(`${SUBNET_PREFIX}.`) && webIp !== GATEWAY, `web got ${webIp}`);
      assert.equal(readFileSync(path.join(ipamNet, webIp), 'utf8'), `${cniId('web')}\n${IFNAME}\n`);

      const addr = ok(node.ctr(['tasks', 'exec', '--exec-id', 'addr', 'web', 'ip', 'addr', 'show', 'dev', IFNAME]), 'ip addr in web');
      log(`ip addr in web:\n${addr.trimEnd()}`);
      assert.match(addr, new RegExp(`inet ${webIp.replace(/\./g, '\\.')}/24 `));
      assert.match(addr, new RegExp(`link/ether ${podMac(webIp)} `));
      const routes = ok(node.ctr(['tasks', 'exec', '--exec-id', 'route', 'web', 'ip', 'route']), 'ip route in web');
      log(`ip route in web: ${routes.trim().replace(/\n/g, ' | ')}`);
      assert.match(routes, new RegExp(`default via ${GATEWAY.replace(/\./g, '\\.')} dev ${IFNAME}`));

      const links = nodeLinks(node);
      const veth = links.find((l) => l.ifname === hostVeth('web'));
      log(`node links: ${links.map((l) => `${l.ifname}${l.master ? `@${l.master}` : ''}`).join(' ')}`);
      assert.ok(veth, `host veth ${hostVeth('web')} in the node netns`);
      assert.equal(veth.master, 'cni0');
      assert.equal(veth.ifalias, `twill/${NETWORK}/${cniId('web')}/${IFNAME}`);
      assert.equal(sh(['ip', 'link', 'show', hostVeth('web')]).status, 1, 'the veth is not in the root netns');
      assert.match(must(['ip', '-n', node.netns, '-4', 'addr', 'show', 'dev', 'cni0']), new RegExp(`inet ${GATEWAY.replace(/\./g, '\\.')}/24 `));

      const cache = path.join(node.upper['/var/lib'], 'cni/results', `${NETWORK}-${cniId('web')}-${IFNAME}`);
      assert.ok(existsSync(cache), `libcni cached the ADD result inside the node overlay (${cache})`);
      assert.ok(!existsSync(`/var/lib/cni/results/${NETWORK}-${cniId('web')}-${IFNAME}`), 'nothing in the host /var/lib/cni');

      const pingGw = ok(node.ctr(['tasks', 'exec', '--exec-id', 'pinggw', 'web', 'ping', '-c', '3', '-W', '2', GATEWAY]), 'web pings the gateway');
      log(`web -> gateway: ${pingGw.split('\n').find((l) => l.includes('packets')) ?? pingGw}`);
      const fromNode = must(['ip', 'netns', 'exec', node.netns, 'ping', '-c', '2', '-W', '2', webIp]);
      log(`node -> web: ${fromNode.split('\n').find((l) => l.includes('packets')) ?? ''}`);

      // 2. A second container pings the first across the bridge; ctr run --rm does ADD and DEL.
      t0 = Date.now();
      const pinger = ok(node.ctr(['run', '--rm', '--cni', IMAGE, 'pinger', 'ping', '-c', '3', '-W', '2', webIp], 180_000), 'pinger pings web');
      log(`pinger -> web (${Date.now() - t0} ms): ${pinger.split('\n').find((l) => l.includes('packets')) ?? pinger}`);
      assert.match(pinger, /3 packets transmitted, 3 packets received/);
      assert.equal(reservation(ipamNet, 'pinger'), undefined, 'pinger released its address');
      assert.deepEqual(reservedAddresses(ipamNet), [webIp], 'only web holds an address');
      assert.ok(!nodeLinks(node).some((l) => l.ifname === hostVeth('pinger')), 'pinger veth gone');

      // 3. Kill web: the attached ctr sees the exit, runs CNI DEL (no netns any more) and removes it.
      t0 = Date.now();
      ok(node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', 'web']), 'ctr tasks kill web');
      const webDone = await web.done;
      log(`ctr run web returned ${webDone.status} ${Date.now() - t0} ms after the kill; stderr: ${webDone.stderr.trim() || '(none)'}`);
      assert.equal(webDone.status, 137, 'ctr returns the task status (SIGKILL)');
      assert.doesNotMatch(webDone.stderr, /network review|level=error/, 'CNI DEL succeeded');
      assert.equal(reservation(ipamNet, 'web'), undefined, 'web released its address');
      assert.deepEqual(reservedAddresses(ipamNet), [], 'no reservations left');
      const after = nodeLinks(node);
      assert.ok(!after.some((l) => l.ifname.startsWith('twl')), `no twl veth left: ${after.map((l) => l.ifname).join(' ')}`);
      assert.ok(after.some((l) => l.ifname === 'cni0'), 'the bridge stays');
      assert.equal(ok(node.ctr(['containers', 'list', '--quiet']), 'ctr containers list').trim(), '', 'no containers left');
      assert.ok(!existsSync(cache), 'libcni dropped its cache entry after DEL');
    } finally {
      const steps = await node.stop();
      for (const l of steps) log(`stop: ${l}`);
      assert.deepEqual(node.processes().map((p) => `${p.pid} ${p.argv.join(' ')}`), [], 'no containerd, shim or container process survives');
      assert.equal(existsSync(hostConf), hostHadConf, 'the host /etc/cni/net.d is untouched');
    }
  });
});
