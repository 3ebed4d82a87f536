import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, nullLogger, type Level } from './json-log.js';

const NOW = new Date('2026-11-25T10:00:00.000Z');

function capture(level: Level, base?: Record<string, unknown>): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ write: (l) => lines.push(l) }, level, base, () => NOW) };
}

const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;

describe('createLogger', () => {
  it('writes one JSON line per call: level, time, fields, msg', () => {
    const { lines, log } = capture('debug');
    log.info('pod attached', { ip: '10.244.1.5', n: 3, ok: true, nested: { a: [1] } });
    assert.equal(lines.length, 1);
    const line = lines[0] as string;
    assert.ok(line.endsWith('\n'));
    assert.equal(line.indexOf('\n'), line.length - 1, 'exactly one line');
    assert.equal(line, '{"level":"info","time":"2026-11-25T10:00:00.000Z","ip":"10.244.1.5","n":3,"ok":true,"nested":{"a":[1]},"msg":"pod attached"}\n');
  });

  it('a message with newlines still makes one line', () => {
    const { lines, log } = capture('debug');
    log.error('first\nsecond', { details: 'a\nb' });
    assert.equal(lines.length, 1);
    assert.equal((lines[0] as string).split('\n').length, 2);
    assert.deepEqual(parse(lines[0] as string).msg, 'first\nsecond');
  });

  it('drops calls below its level', () => {
    const order: Level[] = ['debug', 'info', 'warn', 'error'];
    for (const [i, level] of order.entries()) {
      const { lines, log } = capture(level);
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      assert.deepEqual(
        lines.map((l) => parse(l).level),
        order.slice(i),
        `at level ${level}`,
      );
    }
  });

  it('child loggers add fields, keep the level, and nest', () => {
    const { lines, log } = capture('info', { cmd: 'ADD' });
    const child = log.child({ containerID: 'abc', ifName: 'eth0' });
    const grandchild = child.child({ ifName: 'net1', step: 'ipam' });
    child.debug('hidden');
    child.info('c');
    grandchild.warn('g', { ip: '10.0.0.2' });
    log.info('parent');
    assert.equal(lines.length, 3);
    const [c, g, p] = lines.map(parse);
    assert.deepEqual(c, { time: NOW.toISOString(), level: 'info', cmd: 'ADD', containerID: 'abc', ifName: 'eth0', msg: 'c' });
    assert.deepEqual(g, { time: NOW.toISOString(), level: 'warn', cmd: 'ADD', containerID: 'abc', ifName: 'net1', step: 'ipam', ip: '10.0.0.2', msg: 'g' });
    assert.deepEqual(p, { time: NOW.toISOString(), level: 'info', cmd: 'ADD', msg: 'parent' }, 'the parent is unchanged');
  });

  it('call fields override base fields, but never the message, level or time', () => {
    const { lines, log } = capture('debug', { network: 'a' });
    log.info('real message', { network: 'b', msg: 'fake', level: 'debug', time: 'yesterday' });
    const o = parse(lines[0] as string);
    assert.equal(o.network, 'b');
    assert.equal(o.msg, 'real message');
    assert.equal(o.level, 'info');
    assert.equal(o.time, NOW.toISOString());
  });

  it('nullLogger writes nothing and does not throw', () => {
    nullLogger.error('x', { a: 1 });
    nullLogger.child({ b: 2 }).info('y');
  });
});
