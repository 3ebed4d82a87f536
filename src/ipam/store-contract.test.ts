/**
 * The `IpamStore` contract and the allocator's behaviour on top of it, as one reusable suite:
 * allocator.test.ts runs it on `MemoryIpamStore`, fs-store.test.ts on `FsIpamStore`.
 * (This file registers no tests of its own.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TwillError } from '../common/errors.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { allocate, collectGarbage, holds, release, type Range } from './allocator.js';
import type { Attachment, IpamStore } from './types.js';

export const ip = (text: string): number => {
  const v = parseIPv4(text);
  assert.ok(v !== undefined, `test setup: ${text}`);
  return v;
};

/** 10.250.0.0/28 with gateway .1: usable .2-.14, 13 addresses. */
export const SMALL: Range = { first: ip('10.250.0.1'), last: ip('10.250.0.14'), exclude: [ip('10.250.0.1')] };
export const SMALL_CAPACITY = 13;

export const att = (n: number | string, ifName = 'eth0'): Attachment => ({ containerId: `c${n}`, ifName });

function isExhausted(e: unknown): boolean {
  return e instanceof TwillError && e.code === ErrorCode.RangeExhausted;
}

export function ipamStoreContract(label: string, makeStore: () => IpamStore): void {
  describe(`IpamStore contract: ${label}`, () => {
    it('tryReserve creates a record once; ownerOf reads it back; release needs the owner', () => {
      const s = makeStore();
      const a = att(1);
      assert.equal(s.ownerOf(ip('10.250.0.5')), undefined);
      assert.equal(s.tryReserve(ip('10.250.0.5'), a), true);
      assert.equal(s.tryReserve(ip('10.250.0.5'), att(2)), false);
      assert.equal(s.tryReserve(ip('10.250.0.5'), a), false, 'even the owner cannot reserve twice');
      assert.deepEqual(s.ownerOf(ip('10.250.0.5')), a);
      assert.equal(s.release(ip('10.250.0.5'), att(2)), false);
      assert.equal(s.release(ip('10.250.0.5'), { containerId: 'c1', ifName: 'eth1' }), false);
      assert.deepEqual(s.ownerOf(ip('10.250.0.5')), a);
      assert.equal(s.release(ip('10.250.0.5'), a), true);
      assert.equal(s.ownerOf(ip('10.250.0.5')), undefined);
      assert.equal(s.release(ip('10.250.0.5'), a), false);
      assert.deepEqual(s.list(), []);
    });

    it('list returns every record with its owner', () => {
      const s = makeStore();
      s.tryReserve(ip('10.250.0.2'), att(1));
      s.tryReserve(ip('10.250.0.3'), att(2, 'net1'));
      const got = s.list().sort((x, y) => x.ip - y.ip);
      assert.deepEqual(got, [
        { ip: ip('10.250.0.2'), containerId: 'c1', ifName: 'eth0' },
        { ip: ip('10.250.0.3'), containerId: 'c2', ifName: 'net1' },
      ]);
    });

    it('the attachment index: set, read, list, clear', () => {
      const s = makeStore();
      assert.equal(s.lookup(att(1)), undefined);
      s.setLookup(att(1), ip('10.250.0.2'));
      s.setLookup(att(2), ip('10.250.0.3'));
      s.setLookup(att(1), ip('10.250.0.4'));
      assert.equal(s.lookup(att(1)), ip('10.250.0.4'));
      assert.equal(s.lookup(att(1, 'eth1')), undefined);
      assert.deepEqual(
        s.listLookups().map((a) => `${a.containerId}@${a.ifName}`).sort(),
        ['c1@eth0', 'c2@eth0'],
      );
      s.setLookup(att(1), undefined);
      s.setLookup(att(1), undefined);
      assert.equal(s.lookup(att(1)), undefined);
      assert.deepEqual(s.listLookups(), [att(2)]);
    });

    it('lastReserved hint', () => {
      const s = makeStore();
      assert.equal(s.lastReserved(), undefined);
      s.setLastReserved(ip('10.250.0.9'));
      assert.equal(s.lastReserved(), ip('10.250.0.9'));
      s.setLastReserved(ip('10.250.0.3'));
      assert.equal(s.lastReserved(), ip('10.250.0.3'));
    });

    it('allocate: distinct in-range addresses until exhaustion, never the gateway, then code 100', () => {
      const s = makeStore();
      const seen = new Set<number>();
      for (let i = 0; i < SMALL_CAPACITY; i++) {
        const r = allocate(s, SMALL, att(i));
        assert.equal(r.existing, false);
        assert.ok(r.ip >= SMALL.first && r.ip <= SMALL.last, formatIPv4(r.ip));
        assert.notEqual(r.ip, ip('10.250.0.1'));
        assert.ok(!seen.has(r.ip), `duplicate ${formatIPv4(r.ip)}`);
        seen.add(r.ip);
        assert.ok(holds(s, r.ip, att(i)));
      }
      assert.throws(() => allocate(s, SMALL, att('x')), isExhausted);
      assert.equal(s.lookup(att('x')), undefined, 'a failed allocation leaves no index entry');
      assert.equal(s.list().length, SMALL_CAPACITY);
      // Existing holders still get their address back when the range is full.
      const again = allocate(s, SMALL, att(3));
      assert.equal(again.existing, true);
    });

    it('allocate: the same attachment twice gets the same address; another ifName gets another', () => {
      const s = makeStore();
      const first = allocate(s, SMALL, att(1));
      const second = allocate(s, SMALL, att(1));
      assert.deepEqual(second, { ip: first.ip, existing: true });
      const other = allocate(s, SMALL, att(1, 'net1'));
      assert.notEqual(other.ip, first.ip);
      assert.equal(s.list().length, 2);
    });

    it('allocate: a stale index entry (record gone or held by another) is not trusted', () => {
      const s = makeStore();
      const a = allocate(s, SMALL, att(1));
      // Record released behind the index's back, then taken by someone else.
      assert.ok(s.release(a.ip, att(1)));
      assert.ok(s.tryReserve(a.ip, att(2)));
      const b = allocate(s, SMALL, att(1));
      assert.equal(b.existing, false);
      assert.notEqual(b.ip, a.ip);
      assert.deepEqual(s.ownerOf(a.ip), att(2));
      assert.equal(s.lookup(att(1)), b.ip);
    });

    it('release: frees the address and the index entry; idempotent', () => {
      const s = makeStore();
      const a = allocate(s, SMALL, att(1));
      const b = allocate(s, SMALL, att(2));
      assert.equal(release(s, att(1)), a.ip);
      assert.equal(s.ownerOf(a.ip), undefined);
      assert.equal(s.lookup(att(1)), undefined);
      assert.equal(release(s, att(1)), undefined);
      assert.equal(release(s, att('never')), undefined);
      assert.deepEqual(s.ownerOf(b.ip), att(2), 'other reservations untouched');
      assert.equal(s.lookup(att(2)), b.ip);
    });

    it('release: falls back to a scan when the index entry is missing', () => {
      const s = makeStore();
      const a = allocate(s, SMALL, att(1));
      s.setLookup(att(1), undefined);
      assert.equal(release(s, att(1)), a.ip);
      assert.equal(s.ownerOf(a.ip), undefined);
    });

    it('release: falls back to a scan when the index entry is stale', () => {
      const s = makeStore();
      const a = allocate(s, SMALL, att(1));
      s.setLookup(att(1), ip('10.250.0.13'));
      assert.equal(release(s, att(1)), a.ip);
      assert.equal(s.ownerOf(a.ip), undefined);
      assert.equal(s.lookup(att(1)), undefined);
    });

    it('round-robin: a just-released address is not handed out again at once', () => {
      const s = makeStore();
      const a = allocate(s, SMALL, att(1));
      allocate(s, SMALL, att(2));
      release(s, att(1));
      const c = allocate(s, SMALL, att(3));
      assert.notEqual(c.ip, a.ip);
      // It comes back only after the rest of the range went round.
      const order: number[] = [c.ip];
      for (let i = 4; ; i++) {
        const r = allocate(s, SMALL, att(i));
        order.push(r.ip);
        if (r.ip === a.ip) break;
        assert.ok(i < 100, 'released address never came back');
      }
      assert.equal(s.list().length, SMALL_CAPACITY, 'the released address is the last free one');
    });

    it('collectGarbage: releases exactly the attachments not in the valid list, and their index entries', () => {
      const s = makeStore();
      const all = [att(1), att(2), att(3), att(4, 'net1'), att(4)];
      const ips = new Map(all.map((a) => [`${a.containerId}@${a.ifName}`, allocate(s, SMALL, a).ip]));
      // A stale index entry without a record, for an invalid attachment.
      s.setLookup(att('gone'), ip('10.250.0.14'));
      const valid = [att(2), att(4)];
      const released = collectGarbage(s, valid);
      assert.deepEqual(
        released.map((r) => `${r.containerId}@${r.ifName}`).sort(),
        ['c1@eth0', 'c3@eth0', 'c4@net1'],
      );
      for (const r of released) assert.equal(r.ip, ips.get(`${r.containerId}@${r.ifName}`));
      assert.deepEqual(
        s.list().map((r) => `${r.containerId}@${r.ifName}`).sort(),
        ['c2@eth0', 'c4@eth0'],
      );
      assert.deepEqual(
        s.listLookups().map((a) => `${a.containerId}@${a.ifName}`).sort(),
        ['c2@eth0', 'c4@eth0'],
      );
      assert.deepEqual(collectGarbage(s, valid), [], 'a second GC releases nothing');
      assert.equal(collectGarbage(s, []).length, 2);
      assert.deepEqual(s.list(), []);
    });
  });
}
