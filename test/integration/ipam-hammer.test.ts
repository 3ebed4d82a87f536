/**
 * Issue 8 item 9: the file store under any interleaving. Several processes run ADD, DEL and GC of the
 * same and of different containers for 30 s on a range barely larger than what is held, so freed
 * addresses are re-reserved at once; then a final GC. Asserted: no process saw a live pod lose its
 * reservation, no address is held twice, every live pod holds its address, nothing else is reserved.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collectGarbage } from '../../src/ipam/allocator.js';
import { FsIpamStore } from '../../src/ipam/fs-store.js';
import { parseIPv4 } from '../../src/net/ipv4.js';
import { withScope } from './harness.js';

const WORKERS = 4;
const PRIVATE = 4;
const DOOMED = 4;
const SECONDS = Number(process.env.TWILL_HAMMER_SECONDS ?? 30);
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ipam-hammer-worker.js');

interface Report {
  ops: Record<string, number>;
  violations: string[];
  live: Record<string, number>;
}

function runWorker(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test(`IPAM hammer: ${WORKERS} processes of parallel ADD/DEL/GC for ${SECONDS} s`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  await withScope(async (s) => {
    const dataDir = s.tmpdir('hammer');
    const first = parseIPv4('10.230.0.1') as number;
    // Everything that can be held at once (private + doomed) plus two: freed addresses come back fast.
    const last = first + WORKERS * PRIVATE + DOOMED + 2;
    const deadline = Date.now() + SECONDS * 1000;
    const args = (id: number): string[] => [dataDir, String(id), String(deadline), String(first), String(last), String(WORKERS), String(PRIVATE), String(DOOMED)];
    const outs = await Promise.all(Array.from({ length: WORKERS }, (_, id) => runWorker(args(id))));
    const reports = outs.map((o, i) => {
      assert.equal(o.code, 0, `worker ${i} failed: ${o.stderr}`);
      return JSON.parse(o.stdout) as Report;
    });
    const totals: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.ops)) totals[k] = (totals[k] ?? 0) + v;
    console.log(`# hammer ops: ${JSON.stringify(totals)}`);
    assert.deepEqual(reports.flatMap((r) => r.violations), [], 'no live pod lost its reservation during the run');
    assert.ok((totals.gc ?? 0) > 50 && (totals.doomedDel ?? 0) > 50 && (totals.del ?? 0) > 50, 'the hammer really ran');

    const live = new Map(reports.flatMap((r) => Object.entries(r.live)));
    const valid = [...live.keys()].map((containerId) => ({ containerId, ifName: 'eth0' }));
    const store = FsIpamStore.open(dataDir, 'hammer');
    collectGarbage(store, valid);
    const ips = [...live.values()];
    assert.equal(new Set(ips).size, ips.length, 'no address held by two live pods');
    const records = new Map(store.list().map((r) => [r.containerId, r.ip]));
    assert.deepEqual(Object.fromEntries([...records].sort()), Object.fromEntries([...live].sort()), 'after GC: exactly the live pods hold exactly their addresses');
    assert.deepEqual(readdirSync(path.join(dataDir, 'hammer', 'by-attachment')).sort(), [...live.keys()].map((k) => `${k}@eth0`).sort());
    assert.deepEqual(readdirSync(path.join(dataDir, 'hammer')).filter((n) => n.startsWith('.tmp-')), [], 'no temporary file or claim left');
  });
});
