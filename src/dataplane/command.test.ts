import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, TwillError } from '../common/errors.js';
import { createSpawnAsyncRunner } from './async-command.js';
import { createSpawnRunner, inNetns, parseJsonLines } from './command.js';

describe('spawn runner', () => {
  it('runs argv (no shell), feeds stdin, returns status and output', () => {
    const r = createSpawnRunner(5000).run(['sh', '-c', 'cat; echo "$0" >&2; exit 3', '$(id)'], 'in');
    assert.deepEqual(r, { status: 3, stdout: 'in', stderr: '$(id)\n' });
  });

  it('kills a hung program and says so (kernel failure, code 101)', () => {
    const t0 = Date.now();
    assert.throws(
      () => createSpawnRunner(200).run(['sleep', '5']),
      (e: unknown) => e instanceof TwillError && e.code === ErrorCode.KernelFailure && /did not finish within 0.2 s/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 3000);
  });

  it('reports a missing program as a kernel failure', () => {
    assert.throws(() => createSpawnRunner(1000).run(['/nonexistent/ip']), (e: unknown) => e instanceof TwillError && e.code === ErrorCode.KernelFailure);
  });

  it('wraps programs in nsenter for a namespace and parses ip -json -batch output', () => {
    assert.deepEqual(inNetns('/run/netns/x', ['ip', '-batch', '-']), ['nsenter', '--net=/run/netns/x', 'ip', '-batch', '-']);
    assert.deepEqual(inNetns(undefined, ['ip']), ['ip']);
    assert.deepEqual(parseJsonLines('[{"a":1}]\n[]\n\n{"b":2}\n'), [[{ a: 1 }], [], [{ b: 2 }]]);
  });
});

describe('async spawn runner (the agent)', () => {
  it('returns status and output, and kills a hung program after its timeout (status 124)', async () => {
    const runner = createSpawnAsyncRunner(300);
    assert.deepEqual(await runner.run(['sh', '-c', 'cat; exit 2'], 'x'), { status: 2, stdout: 'x', stderr: '' });
    const t0 = Date.now();
    const hung = await runner.run(['sleep', '5']);
    assert.equal(hung.status, 124);
    assert.match(hung.stderr, /did not finish within 0.3 s/);
    assert.ok(Date.now() - t0 < 3000);
  });
});
