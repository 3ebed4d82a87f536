import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { allocate, collectGarbage, release } from './allocator.js';
import { FsIpamStore } from './fs-store.js';
import { att, ip, ipamStoreContract, SMALL } from './store-contract.test.js';

const root = fs.mkdtempSync(path.join(tmpdir(), 'twill-fs-store-test-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
function freshDataDir(): string {
  dirs += 1;
  const d = path.join(root, `d${dirs}`);
  fs.mkdirSync(d);
  return d;
}

ipamStoreContract('FsIpamStore', () => FsIpamStore.open(freshDataDir(), 'net'));

const tmpFiles = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('.tmp-'));

describe('FsIpamStore on disk', () => {
  it('lays out records, index symlinks and the round-robin hint as documented', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    const dir = path.join(dataDir, 'net');
    assert.equal(s.dir, dir);
    const a = allocate(s, SMALL, { containerId: 'abc123', ifName: 'eth0' });
    assert.equal(a.ip, ip('10.250.0.2'));
    assert.equal(fs.readFileSync(path.join(dir, '10.250.0.2'), 'utf8'), 'abc123\neth0\n');
    assert.equal(fs.readlinkSync(path.join(dir, 'by-attachment', 'abc123@eth0')), '10.250.0.2');
    assert.equal(fs.readFileSync(path.join(dir, 'last_reserved_ip'), 'utf8').trim(), '10.250.0.2');
    assert.deepEqual(tmpFiles(dir), [], 'no temporary file is left behind');
    assert.equal(fs.statSync(path.join(dir, '10.250.0.2')).nlink, 1, 'the temporary link is gone');
    release(s, { containerId: 'abc123', ifName: 'eth0' });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['by-attachment', 'last_reserved_ip']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'by-attachment')), []);
  });

  it('list ignores files that are not address records', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    allocate(s, SMALL, att(1));
    fs.writeFileSync(path.join(s.dir, 'README'), 'x\ny\n');
    fs.writeFileSync(path.join(s.dir, '999.1.1.1'), 'x\ny\n');
    fs.writeFileSync(path.join(s.dir, `.tmp-${process.pid}-999`), 'x\ny\n');
    assert.deepEqual(s.list(), [{ ip: ip('10.250.0.2'), containerId: 'c1', ifName: 'eth0' }]);
  });

  it('openExisting does not create anything', () => {
    const dataDir = freshDataDir();
    assert.equal(FsIpamStore.openExisting(dataDir, 'nope'), undefined);
    assert.equal(FsIpamStore.openExisting(path.join(dataDir, 'missing'), 'nope'), undefined);
    assert.deepEqual(fs.readdirSync(dataDir), []);
    FsIpamStore.open(dataDir, 'net');
    assert.ok(FsIpamStore.openExisting(dataDir, 'net'));
  });

  it('a store whose index directory vanished still answers and releases by scan', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    const a = allocate(s, SMALL, att(1));
    fs.rmSync(path.join(s.dir, 'by-attachment'), { recursive: true });
    assert.equal(s.lookup(att(1)), undefined);
    assert.deepEqual(s.listLookups(), []);
    assert.equal(release(s, att(1)), a.ip);
  });

  it('a corrupt (one-line) record is not reported as held by anyone', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    fs.writeFileSync(path.join(s.dir, '10.250.0.2'), 'only-one-line');
    assert.equal(s.ownerOf(ip('10.250.0.2')), undefined);
    assert.equal(s.tryReserve(ip('10.250.0.2'), att(1)), false, 'but the address is not handed out either');
    fs.writeFileSync(path.join(s.dir, '10.250.0.3'), '');
    assert.equal(s.sweepTemporary(), 2, 'GC sweeps corrupt records (a power loss after link(2))');
    assert.equal(s.tryReserve(ip('10.250.0.2'), att(1)), true, 'the address is free again');
  });

  it('sweepTemporary removes temp files of dead PIDs and unparsable names, keeps those of live PIDs and its own', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    assert.ok(dead !== undefined && !fs.existsSync(`/proc/${dead}`), 'test setup: a dead PID');
    const names = {
      dead: `.tmp-${dead}-1`,
      dead2: `.tmp-${dead}-7`,
      junk: '.tmp-notapid-1',
      live: `.tmp-${process.ppid}-3`,
      init: '.tmp-1-1',
      own: `.tmp-${process.pid}-42`,
    };
    for (const n of Object.values(names)) fs.writeFileSync(path.join(s.dir, n), 'partial');
    fs.writeFileSync(path.join(s.dir, '10.250.0.9'), 'c9\neth0\n');
    assert.equal(s.sweepTemporary(), 3);
    assert.deepEqual(tmpFiles(s.dir).sort(), [names.init, names.live, names.own].sort());
    assert.ok(fs.existsSync(path.join(s.dir, '10.250.0.9')), 'records are never swept');
    // collectGarbage sweeps too.
    fs.writeFileSync(path.join(s.dir, `.tmp-${dead}-2`), 'partial');
    collectGarbage(s, [att(9)]);
    assert.deepEqual(tmpFiles(s.dir).sort(), [names.init, names.live, names.own].sort());
  });
});

describe('FsIpamStore under concurrency', () => {
  const PROCS = 16;
  const EACH = 10;

  it(`${PROCS} processes allocating ${EACH} addresses each get distinct addresses and complete records`, { timeout: 90_000 }, async () => {
    const dataDir = freshDataDir();
    const goFile = path.join(dataDir, 'go');
    const script = path.join(dataDir, 'race.mjs');
    const storeUrl = new URL('./fs-store.js', import.meta.url).href;
    const allocUrl = new URL('./allocator.js', import.meta.url).href;
    fs.writeFileSync(
      script,
      `import * as fs from 'node:fs';
import { FsIpamStore } from ${JSON.stringify(storeUrl)};
import { allocate } from ${JSON.stringify(allocUrl)};
const [dataDir, id, goFile, count, first, last, gw] = process.argv.slice(2);
process.stdout.write('ready\\n');
const nap = new Int32Array(new SharedArrayBuffer(4));
const deadline = Date.now() + 45000;
while (!fs.existsSync(goFile)) {
  if (Date.now() > deadline) process.exit(3);
  Atomics.wait(nap, 0, 0, 1);
}
const store = FsIpamStore.open(dataDir, 'race');
const range = { first: Number(first), last: Number(last), exclude: [Number(gw)] };
const got = [];
for (let i = 0; i < Number(count); i++) got.push(allocate(store, range, { containerId: 'p' + id + '-' + i, ifName: 'eth0' }).ip);
process.stdout.write(JSON.stringify(got) + '\\n');
`,
    );
    // Exactly PROCS*EACH free addresses: any double allocation shows up as exhaustion or a duplicate.
    const first = ip('10.250.0.1');
    const last = first + PROCS * EACH;
    const args = [String(EACH), String(first), String(last), String(first)];

    const storeDir = path.join(dataDir, 'race');
    const seenContents: string[] = [];
    let running = PROCS;
    let ready = 0;
    const results: Array<{ code: number | null; stdout: string; stderr: string }> = [];
    const children = Array.from({ length: PROCS }, (_, id) => {
      const child = spawn(process.execPath, [script, dataDir, String(id), goFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const r = { code: null as number | null, stdout: '', stderr: '' };
      results.push(r);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        if (r.stdout === '' && d.startsWith('ready')) ready += 1;
        r.stdout += d;
        if (ready === PROCS && !fs.existsSync(goFile)) fs.writeFileSync(goFile, '');
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => (r.stderr += d));
      return new Promise<void>((resolve) =>
        child.on('exit', (code) => {
          r.code = code;
          running -= 1;
          // A child that died early must not leave the others waiting for the start signal.
          if (!fs.existsSync(goFile)) fs.writeFileSync(goFile, '');
          resolve();
        }),
      );
    });
    try {
      // Meanwhile read every record we can see: a record is never visible half-written.
      while (running > 0) {
        await new Promise((res) => setTimeout(res, 2));
        let names: string[] = [];
        try {
          names = fs.readdirSync(storeDir);
        } catch {
          continue;
        }
        for (const n of names) {
          if (!/^\d+\.\d+\.\d+\.\d+$/.test(n)) continue;
          try {
            seenContents.push(fs.readFileSync(path.join(storeDir, n), 'utf8'));
          } catch {
            /* not there any more */
          }
        }
      }
      await Promise.all(children);
    } finally {
      if (!fs.existsSync(goFile)) fs.writeFileSync(goFile, '');
    }

    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `child ${i} failed: ${r.stderr}`);
    const all = results.flatMap((r) => JSON.parse(r.stdout.split('\n')[1] ?? '[]') as number[]);
    assert.equal(all.length, PROCS * EACH);
    assert.equal(new Set(all).size, PROCS * EACH, 'every address handed out once');
    for (const a of all) assert.ok(a > first && a <= last);

    const s = FsIpamStore.open(dataDir, 'race');
    const records = s.list();
    assert.equal(records.length, PROCS * EACH);
    for (const rec of records) {
      assert.match(rec.containerId, /^p\d+-\d+$/);
      assert.equal(rec.ifName, 'eth0');
      assert.equal(fs.readFileSync(path.join(storeDir, `${rec.ip >>> 24}.${(rec.ip >>> 16) & 255}.${(rec.ip >>> 8) & 255}.${rec.ip & 255}`), 'utf8'), `${rec.containerId}\neth0\n`);
      assert.equal(s.lookup(rec), rec.ip, `index of ${rec.containerId}`);
    }
    assert.equal(s.listLookups().length, PROCS * EACH);
    assert.deepEqual(tmpFiles(storeDir), [], 'no temporary files left by the racers');
    assert.ok(seenContents.length > 0, 'the reader saw records while the race ran');
    for (const c of seenContents) assert.match(c, /^p\d+-\d+\neth0\n$/, `half-written record: ${JSON.stringify(c)}`);
  });
});
