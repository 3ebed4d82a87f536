import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCode, TwillError } from '../common/errors.js';
import { broadcast, hostRange, maskOf, type Cidr } from '../net/ipv4.js';
import { allocate, candidates, collectGarbage, release, type Range } from './allocator.js';
import { MemoryIpamStore } from './memory-store.js';
import { attachmentKey, type Attachment } from './types.js';
import { att, ip, ipamStoreContract } from './store-contract.test.js';

const RUNS = { numRuns: 200 };

ipamStoreContract('MemoryIpamStore', () => new MemoryIpamStore());

/** A random subnet (/23../30), its gateway and an allocation range inside its host range. */
const subnetSetup = fc
  .record({
    base: fc.integer({ min: 0, max: 0xffffffff }),
    prefix: fc.integer({ min: 23, max: 30 }),
    g: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    a: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    b: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  })
  .map(({ base, prefix, g, a, b }) => {
    const subnet: Cidr = { network: (base & maskOf(prefix)) >>> 0, prefix };
    const hosts = hostRange(subnet);
    const n = hosts.last - hosts.first + 1;
    const pick = (f: number): number => hosts.first + Math.floor(f * n);
    const [x, y] = [pick(a), pick(b)].sort((p, q) => p - q) as [number, number];
    const gateway = pick(g);
    const range: Range = { first: x, last: y, exclude: [gateway] };
    return { subnet, gateway, range };
  });

describe('allocate (properties, MemoryIpamStore)', () => {
  it('never hands out network, broadcast or gateway; fills the range exactly, then code 100', () => {
    fc.assert(
      fc.property(subnetSetup, ({ subnet, gateway, range }) => {
        const s = new MemoryIpamStore();
        const got = new Set<number>();
        const capacity = range.last - range.first + 1 - (gateway >= range.first && gateway <= range.last ? 1 : 0);
        for (let i = 0; i < capacity; i++) {
          const { ip: a, existing } = allocate(s, range, att(i));
          assert.equal(existing, false);
          assert.notEqual(a, subnet.network);
          assert.notEqual(a, broadcast(subnet));
          assert.notEqual(a, gateway);
          assert.ok(a >= range.first && a <= range.last);
          assert.ok(!got.has(a));
          got.add(a);
        }
        assert.throws(
          () => allocate(s, range, att('overflow')),
          (e: unknown) => e instanceof TwillError && e.code === ErrorCode.RangeExhausted,
        );
      }),
      RUNS,
    );
  });

  it('re-allocating for existing holders returns their own address, in any order', () => {
    fc.assert(
      fc.property(subnetSetup, fc.array(fc.nat(40), { minLength: 1, maxLength: 60 }), ({ range }, owners) => {
        const s = new MemoryIpamStore();
        const mine = new Map<number, number>();
        for (const o of owners) {
          let r;
          try {
            r = allocate(s, range, att(o));
          } catch (e) {
            assert.ok(e instanceof TwillError && e.code === ErrorCode.RangeExhausted);
            assert.ok(!mine.has(o), 'a holder must never see "exhausted"');
            continue;
          }
          if (mine.has(o)) assert.deepEqual(r, { ip: mine.get(o), existing: true });
          else mine.set(o, r.ip);
        }
        assert.equal(new Set(mine.values()).size, mine.size);
      }),
      RUNS,
    );
  });
});

describe('collectGarbage (property, MemoryIpamStore)', () => {
  it('releases exactly the reservations whose attachment is not valid', () => {
    const attachment = fc.record({
      containerId: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'),
      ifName: fc.constantFrom('eth0', 'net1'),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(attachment, { selector: attachmentKey, maxLength: 13 }),
        fc.array(attachment, { maxLength: 8 }),
        (held: Attachment[], valid: Attachment[]) => {
          const s = new MemoryIpamStore();
          const range: Range = { first: ip('10.250.0.1'), last: ip('10.250.0.14'), exclude: [ip('10.250.0.1')] };
          for (const a of held) allocate(s, range, a);
          const validKeys = new Set(valid.map(attachmentKey));
          const released = collectGarbage(s, valid).map(attachmentKey).sort();
          const expectReleased = held.map(attachmentKey).filter((k) => !validKeys.has(k)).sort();
          const expectKept = held.map(attachmentKey).filter((k) => validKeys.has(k)).sort();
          assert.deepEqual(released, expectReleased);
          assert.deepEqual(s.list().map(attachmentKey).sort(), expectKept);
          assert.deepEqual(s.listLookups().map(attachmentKey).sort(), expectKept);
        },
      ),
      RUNS,
    );
  });
});

describe('candidates', () => {
  const r = (first: string, last: string, exclude: string[] = []): Range => ({ first: ip(first), last: ip(last), exclude: exclude.map(ip) });

  it('starts after the last reserved address and wraps once', () => {
    const range = r('10.0.0.1', '10.0.0.5', ['10.0.0.1']);
    const at = (last: number | undefined): number[] => [...candidates(range, last)].map((v) => v & 255);
    assert.deepEqual(at(undefined), [2, 3, 4, 5]);
    assert.deepEqual(at(ip('10.0.0.3')), [4, 5, 2, 3]);
    assert.deepEqual(at(ip('10.0.0.5')), [2, 3, 4, 5]);
    assert.deepEqual(at(ip('10.0.0.1')), [2, 3, 4, 5]);
    assert.deepEqual(at(ip('10.0.0.9')), [2, 3, 4, 5], 'a hint outside the range is ignored');
    assert.deepEqual(at(ip('9.0.0.0')), [2, 3, 4, 5]);
  });

  it('a one-address range', () => {
    assert.deepEqual([...candidates(r('10.0.0.7', '10.0.0.7'), undefined)], [ip('10.0.0.7')]);
    assert.deepEqual([...candidates(r('10.0.0.7', '10.0.0.7', ['10.0.0.7']), ip('10.0.0.7'))], []);
  });

  it('covers the range minus the exclusions exactly once, from any hint (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff - 600 }),
        fc.integer({ min: 0, max: 511 }),
        fc.array(fc.integer({ min: -5, max: 520 }), { maxLength: 5 }),
        fc.option(fc.integer({ min: -10, max: 530 }), { nil: undefined }),
        (first, span, excl, hint) => {
          const range: Range = { first, last: first + span, exclude: excl.map((e) => first + e) };
          const lastReserved = hint === undefined ? undefined : first + hint;
          const got = [...candidates(range, lastReserved)];
          const expected: number[] = [];
          for (let v = range.first; v <= range.last; v++) if (!range.exclude.includes(v)) expected.push(v);
          assert.equal(new Set(got).size, got.length, 'no duplicates');
          assert.deepEqual([...got].sort((a, b) => a - b), expected);
          const inRange = lastReserved !== undefined && lastReserved >= range.first && lastReserved <= range.last;
          const start = inRange ? (lastReserved === range.last ? range.first : lastReserved + 1) : range.first;
          const firstAllowed = [...Array(span + 1).keys()].map((i) => range.first + ((start - range.first + i) % (span + 1))).find((v) => !range.exclude.includes(v));
          assert.equal(got[0], firstAllowed);
        },
      ),
      RUNS,
    );
  });
});

describe('release on MemoryIpamStore', () => {
  it('removes a stale index entry even when nothing was held', () => {
    const s = new MemoryIpamStore();
    s.setLookup(att(1), ip('10.250.0.5'));
    assert.equal(release(s, att(1)), undefined);
    assert.equal(s.lookup(att(1)), undefined);
  });

  it('releases every record of the attachment when the index is missing (left by an interrupted ADD)', () => {
    const s = new MemoryIpamStore();
    assert.ok(s.tryReserve(ip('10.250.0.5'), att(1)));
    assert.ok(s.tryReserve(ip('10.250.0.6'), att(1)));
    assert.ok(s.tryReserve(ip('10.250.0.7'), att(2)));
    const r = release(s, att(1));
    assert.ok(r === ip('10.250.0.5') || r === ip('10.250.0.6'));
    assert.deepEqual(s.list().map(attachmentKey), ['c2@eth0']);
  });
});

describe('allocate: failures of the store', () => {
  it('an ADD killed between index and record leaves nothing; killed after the record, the retry gets the same address', () => {
    const s = new MemoryIpamStore();
    const range: Range = { first: ip('10.250.0.1'), last: ip('10.250.0.14'), exclude: [] };
    // Killed after the record: simulate by making setLastReserved (the step after tryReserve) throw once.
    const realLast = s.setLastReserved.bind(s);
    s.setLastReserved = () => {
      throw new Error('killed');
    };
    assert.throws(() => allocate(s, range, att(1)));
    s.setLastReserved = realLast;
    const first = s.list();
    assert.equal(first.length, 1);
    const retry = allocate(s, range, att(1));
    assert.equal(retry.ip, first[0]?.ip, 'the retried ADD reuses the record');
    assert.equal(retry.existing, true);
    assert.equal(release(s, att(1)), retry.ip);
    assert.deepEqual(s.list(), [], 'DEL frees it');
  });

  it('a failing index write leaves no reservation behind', () => {
    const s = new MemoryIpamStore();
    const boom = new TwillError(ErrorCode.IoFailure, 'disk full');
    s.setLookup = () => {
      throw boom;
    };
    const range: Range = { first: ip('10.250.0.1'), last: ip('10.250.0.14'), exclude: [] };
    assert.throws(() => allocate(s, range, att(1)), (e: unknown) => e === boom);
    assert.deepEqual(s.list(), [], 'nothing is reserved');
  });
});

describe('allocate (IPv6, bigint ranges)', () => {
  const base = 0xfd000010024400010000000000000000n; // fd00:10:244:1::/64
  const range64: Range<bigint> = { first: base + 1n, last: base + 0xffffffffffffffffn, exclude: [base + 1n] };

  it('a /64: next after the last, never the gateway, no scan of 2^64', () => {
    const s = new MemoryIpamStore<bigint>();
    const t0 = Date.now();
    const got = Array.from({ length: 1000 }, (_, i) => allocate(s, range64, att(i)).ip);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(got[0], base + 2n);
    assert.equal(got[999], base + 1001n);
    assert.equal(new Set(got).size, 1000);
    // Released addresses are not reused at once: the next one follows the last handed out.
    release(s, att(0));
    assert.equal(allocate(s, range64, att('x')).ip, base + 1002n);
  });

  it('wraps at the end of the range and skips taken addresses', () => {
    const s = new MemoryIpamStore<bigint>();
    const r: Range<bigint> = { first: base + 1n, last: base + 3n, exclude: [base + 1n] };
    assert.equal(allocate(s, r, att('a')).ip, base + 2n);
    assert.equal(allocate(s, r, att('b')).ip, base + 3n);
    release(s, att('a'));
    assert.equal(allocate(s, r, att('c')).ip, base + 2n);
    assert.throws(() => allocate(s, r, att('d')), (e: unknown) => e instanceof TwillError && e.code === ErrorCode.RangeExhausted && /fd00:10:244:1::1-fd00:10:244:1::3/.test(e.message));
  });

  it('candidates are bounded whatever the range size', () => {
    let n = 0;
    for (const c of candidates(range64, range64.last - 5n, 100)) {
      assert.ok(c >= range64.first && c <= range64.last);
      n++;
    }
    // Wrapped after the last 5, then the gateway (excluded) and onwards: 99 of the 100 tried.
    assert.equal(n, 99);
  });

  it('IPv4 keeps its number path (same order as before)', () => {
    assert.deepEqual([...candidates({ first: 10, last: 14, exclude: [10] }, 12)], [13, 14, 11, 12]);
  });
});
