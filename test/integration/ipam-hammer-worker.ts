/**
 * One hammer process for ipam-hammer.test.ts: random ADD/DEL/GC on the file store until the deadline.
 * Private pods (w<id>-p<i>) are ADDed and DELed by this process only, as a runtime would; doomed pods
 * (doomed-<j>) are shared by every process and are never valid, so GC, DEL and ADD race on them.
 * Prints one JSON line: op counts, violations seen, and the private pods alive at the end.
 */
import { ErrorCode, TwillError } from '../../src/common/errors.js';
import { allocate, collectGarbage, release } from '../../src/ipam/allocator.js';
import { FsIpamStore } from '../../src/ipam/fs-store.js';
import type { Attachment } from '../../src/ipam/types.js';

// `node --test dist/test` also loads every .js under test/ as a test file: without arguments, do nothing.
if (process.argv.length < 10) process.exit(0);
const [dataDir, id, deadlineText, firstText, lastText, workersText, privText, doomedText] = process.argv.slice(2);
const workers = Number(workersText);
const priv = Number(privText);
const doomed = Number(doomedText);
const range = { first: Number(firstText), last: Number(lastText), exclude: [Number(firstText)] };
const pod = (containerId: string): Attachment => ({ containerId, ifName: 'eth0' });
const valid: Attachment[] = [];
for (let w = 0; w < workers; w++) for (let i = 0; i < priv; i++) valid.push(pod(`w${w}-p${i}`));

const store = FsIpamStore.open(dataDir as string, 'hammer');
const live = new Map<string, number>();
const ops = { add: 0, readd: 0, del: 0, gc: 0, doomedAdd: 0, doomedDel: 0, exhausted: 0 };
const violations: string[] = [];

while (Date.now() < Number(deadlineText)) {
  const r = Math.random();
  try {
    if (r < 0.45) {
      const name = `w${id}-p${Math.floor(Math.random() * priv)}`;
      const known = live.get(name);
      const got = allocate(store, range, pod(name));
      if (known === undefined) {
        ops.add += 1;
        live.set(name, got.ip);
      } else {
        ops.readd += 1;
        if (!got.existing || got.ip !== known) violations.push(`re-ADD of live ${name}: had ${known}, got ${got.ip} existing=${got.existing}`);
        live.set(name, got.ip);
      }
      const holder = store.ownerOf(got.ip);
      if (holder?.containerId !== name) violations.push(`${name} does not hold ${got.ip} right after ADD (holder ${holder?.containerId})`);
    } else if (r < 0.65) {
      const name = `w${id}-p${Math.floor(Math.random() * priv)}`;
      const known = live.get(name);
      if (known === undefined) continue;
      ops.del += 1;
      const freed = release(store, pod(name));
      live.delete(name);
      if (freed !== known) violations.push(`DEL of live ${name}: its reservation ${known} was gone (released ${freed})`);
    } else if (r < 0.8) {
      ops.doomedAdd += 1;
      allocate(store, range, pod(`doomed-${Math.floor(Math.random() * doomed)}`));
    } else if (r < 0.93) {
      ops.doomedDel += 1;
      release(store, pod(`doomed-${Math.floor(Math.random() * doomed)}`));
    } else {
      ops.gc += 1;
      collectGarbage(store, valid);
    }
  } catch (e) {
    if (e instanceof TwillError && e.code === ErrorCode.RangeExhausted) ops.exhausted += 1;
    else violations.push(`error: ${(e as Error).message}`);
  }
}
process.stdout.write(`${JSON.stringify({ ops, violations, live: Object.fromEntries(live) })}\n`);
