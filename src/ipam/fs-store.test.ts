import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import fsCjs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { allocate, collectGarbage, release } from './allocator.js';
import { FsIpamStore, V6_CODEC } from './fs-store.js';
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

  it('sweepTemporary removes temporary files and release claims by age, never by PID, and keeps fresh ones', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    const hourAgo = new Date(Date.now() - 3600_000);
    const old = ['.tmp-1-1', '.tmp-1-2', `.tmp-${process.pid}-7`, `.tmp-${process.ppid}-3`, '.tmp-notapid-1'];
    const fresh = ['.tmp-1-9', `.tmp-${process.pid}-8`];
    for (const n of [...old, ...fresh]) fs.writeFileSync(path.join(s.dir, n), 'partial');
    for (const n of old) fs.utimesSync(path.join(s.dir, n), hourAgo, hourAgo);
    fs.writeFileSync(path.join(s.dir, '10.250.0.9'), 'c9\neth0\n');
    fs.utimesSync(path.join(s.dir, '10.250.0.9'), hourAgo, hourAgo);
    // A claim on an old record is fresh as long as its ctime (set by link(2)) is: it is kept.
    fs.linkSync(path.join(s.dir, '10.250.0.9'), path.join(s.dir, `.tmp-rel-10.250.0.9-${fs.statSync(path.join(s.dir, '10.250.0.9')).ino}`));
    assert.equal(s.sweepTemporary(), old.length, 'the PID-1 leftovers (an agent in a container) go too');
    assert.deepEqual(tmpFiles(s.dir).sort(), [...fresh, `.tmp-rel-10.250.0.9-${fs.statSync(path.join(s.dir, '10.250.0.9')).ino}`].sort());
    assert.ok(fs.existsSync(path.join(s.dir, '10.250.0.9')), 'records are never swept');
    // An hour later the claim is a leftover of a killed release and goes; the record stays.
    assert.equal(s.sweepTemporary(Date.now() + 3600_000), fresh.length + 1);
    assert.deepEqual(tmpFiles(s.dir), []);
    assert.deepEqual(s.ownerOf(ip('10.250.0.9')), att(9));
    // collectGarbage sweeps too.
    fs.writeFileSync(path.join(s.dir, '.tmp-1-3'), 'partial');
    fs.utimesSync(path.join(s.dir, '.tmp-1-3'), hourAgo, hourAgo);
    collectGarbage(s, [att(9)]);
    assert.deepEqual(tmpFiles(s.dir), []);
  });

  it('a stale claim left by a killed release blocks only that record until GC sweeps it; then GC releases it', () => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    const a = allocate(s, SMALL, att(1));
    const rec = path.join(s.dir, '10.250.0.2');
    fs.linkSync(rec, path.join(s.dir, `.tmp-rel-10.250.0.2-${fs.statSync(rec).ino}`));
    assert.equal(s.release(a.ip, att(1)), false, 'another process holds the claim: not released twice');
    assert.deepEqual(s.ownerOf(a.ip), att(1));
    assert.equal(s.sweepTemporary(Date.now() + 3600_000), 1);
    assert.deepEqual(collectGarbage(s, []).map((r) => r.ip), [a.ip]);
    assert.deepEqual(fs.readdirSync(s.dir).filter((n) => n !== 'by-attachment' && n !== 'last_reserved_ip'), []);
  });

  it('a process running as PID 1 (new PID namespace) with .tmp-1-* leftovers allocates and releases', (t) => {
    const dataDir = freshDataDir();
    const s = FsIpamStore.open(dataDir, 'net');
    for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(s.dir, `.tmp-1-${i}`), 'partial');
    const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    if (probe.status !== 0 || probe.stdout !== '1') {
      t.skip(`cannot run a process as PID 1 here (unshare --pid needs root): ${probe.stderr.trim()}`);
      return;
    }
    const script = `import { FsIpamStore } from ${JSON.stringify(new URL('./fs-store.js', import.meta.url).href)};
import { allocate, release } from ${JSON.stringify(new URL('./allocator.js', import.meta.url).href)};
if (process.pid !== 1) throw new Error('not PID 1: ' + process.pid);
const store = FsIpamStore.open(${JSON.stringify(dataDir)}, 'net');
const range = ${JSON.stringify(SMALL)};
const got = [];
for (let i = 0; i < 3; i++) got.push(allocate(store, range, { containerId: 'pid1-' + i, ifName: 'eth0' }).ip);
release(store, { containerId: 'pid1-0', ifName: 'eth0' });
process.stdout.write(JSON.stringify(got));
`;
    const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, `allocation as PID 1 failed: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), [ip('10.250.0.2'), ip('10.250.0.3'), ip('10.250.0.4')]);
    assert.deepEqual(s.list().map((x) => x.containerId).sort(), ['pid1-1', 'pid1-2']);
  });

  it('release is atomic: a concurrent release plus re-reserve at any read of the release never loses the new record', () => {
    // Run "another process releases A's record and B reserves the address" at the n-th moment the
    // release reads a file of that address (its record, or its claim), for every n the release has.
    for (const nth of [1, 2, 3]) {
      const dataDir = freshDataDir();
      const s1 = FsIpamStore.open(dataDir, 'net');
      const s2 = FsIpamStore.open(dataDir, 'net');
      const x = ip('10.250.0.5');
      assert.ok(s1.tryReserve(x, att('A')));
      const original = fsCjs.readFileSync;
      let reads = 0;
      let nested = false;
      let interleaved: { released: boolean; reservedB: boolean } | undefined;
      fsCjs.readFileSync = ((...args: Parameters<typeof original>) => {
        const out = original(...args);
        if (!nested && String(args[0]).includes('10.250.0.5') && ++reads === nth) {
          nested = true;
          interleaved = { released: s2.release(x, att('A')), reservedB: s2.tryReserve(x, att('B')) };
          nested = false;
        }
        return out;
      }) as typeof original;
      syncBuiltinESMExports();
      let released: boolean;
      try {
        released = s1.release(x, att('A'));
      } finally {
        fsCjs.readFileSync = original;
        syncBuiltinESMExports();
      }
      if (interleaved === undefined) {
        assert.ok(nth > 1, 'test setup: the release reads the record at least once');
        continue;
      }
      assert.equal(Number(released) + Number(interleaved.released), 1, `read ${nth}: exactly one of the two releases released A`);
      if (interleaved.reservedB) assert.deepEqual(s1.ownerOf(x), att('B'), `read ${nth}: B's fresh reservation survives`);
      else assert.equal(s1.ownerOf(x), undefined);
      assert.deepEqual(tmpFiles(s1.dir), [], 'no claim left behind');
    }
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
import fsCjs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
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

describe('FsIpamStore, IPv6 (dual stack)', () => {
  const base = 0xfd000010024400010000000000000000n; // fd00:10:244:1::
  it('records under the RFC 5952 name, own index and hint; shares the directory with IPv4, each sees only its family', () => {
    const dataDir = freshDataDir();
    const s4 = FsIpamStore.open(dataDir, 'net');
    const s6 = FsIpamStore.open(dataDir, 'net', V6_CODEC);
    const owner = att('c1');
    const range6 = { first: base + 1n, last: base + 0xffffffffffffffffn, exclude: [base + 1n] };
    assert.equal(allocate(s4, { first: ip('10.244.1.1'), last: ip('10.244.1.254'), exclude: [ip('10.244.1.1')] }, owner).ip, ip('10.244.1.2'));
    assert.equal(allocate(s6, range6, owner).ip, base + 2n);
    const dir = path.join(dataDir, 'net');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['10.244.1.2', 'by-attachment', 'by-attachment-v6', 'fd00:10:244:1::2', 'last_reserved_ip', 'last_reserved_ip.v6'].sort());
    assert.equal(fs.readFileSync(path.join(dir, 'fd00:10:244:1::2'), 'utf8'), `${owner.containerId}\n${owner.ifName}\n`);
    assert.equal(fs.readlinkSync(path.join(dir, 'by-attachment-v6', `${owner.containerId}@${owner.ifName}`)), 'fd00:10:244:1::2');
    assert.deepEqual(s4.list().map((r) => r.ip), [ip('10.244.1.2')]);
    assert.deepEqual(s6.list().map((r) => r.ip), [base + 2n]);
    assert.equal(s6.lastReserved(), base + 2n);
    // A fresh handle (another plugin process) continues after the hint and finds the index.
    const again = FsIpamStore.openExisting(dataDir, 'net', V6_CODEC);
    assert.deepEqual(again && allocate(again, range6, owner), { ip: base + 2n, existing: true });
    assert.equal(again && allocate(again, range6, att('c2')).ip, base + 3n);
    // GC and release per family.
    assert.deepEqual(collectGarbage(s6, [owner]).map((r) => r.ip), [base + 3n]);
    assert.equal(release(s6, owner), base + 2n);
    assert.deepEqual(s6.list(), []);
    assert.deepEqual(s4.list().map((r) => r.ip), [ip('10.244.1.2')]);
  });

  it('a non-canonical IPv6 file name is not a record (only the RFC 5952 spelling counts)', () => {
    const dataDir = freshDataDir();
    const s6 = FsIpamStore.open(dataDir, 'net', V6_CODEC);
    fs.writeFileSync(path.join(dataDir, 'net', 'FD00:10:244:1:0::9'), 'x\neth0\n');
    assert.deepEqual(s6.list(), []);
    assert.equal(V6_CODEC.parse('fd00:10:244:1::9'), base + 9n);
    assert.equal(V6_CODEC.parse('fd00:10:244:1:0:0:0:9'), undefined);
    assert.equal(V6_CODEC.parse('10.244.1.9'), undefined);
  });
});

describe('FsIpamStore.openExisting, IPv6', () => {
  it('is undefined for a network that never had an IPv6 store (DEL/GC skip the IPv6 pass)', () => {
    const dataDir = freshDataDir();
    FsIpamStore.open(dataDir, 'net');
    assert.ok(FsIpamStore.openExisting(dataDir, 'net'));
    assert.equal(FsIpamStore.openExisting(dataDir, 'net', V6_CODEC), undefined);
    FsIpamStore.open(dataDir, 'net', V6_CODEC);
    assert.ok(FsIpamStore.openExisting(dataDir, 'net', V6_CODEC));
  });
});
