import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TwillError } from '../common/errors.js';
import { parseCniArgs, parseCniEnv, readCommand } from './env.js';

type Env = Record<string, string | undefined>;
const full = (command: string, over: Env = {}): Env => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/cni-1234',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  ...over,
});

function invalidEnv(env: Env, msg?: RegExp): void {
  assert.throws(
    () => parseCniEnv(env),
    (e: unknown) => {
      assert.ok(e instanceof TwillError);
      assert.equal(e.code, ErrorCode.InvalidEnv, e.message);
      if (msg) assert.match(e.message, msg);
      return true;
    },
  );
}

describe('readCommand', () => {
  it('accepts the six verbs and nothing else', () => {
    for (const c of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']) assert.equal(readCommand({ CNI_COMMAND: c }), c);
    for (const c of [undefined, '', 'add', 'UPDATE', 'ADD ', 'VERSIONS']) {
      assert.throws(() => readCommand({ CNI_COMMAND: c }), (e: unknown) => e instanceof TwillError && e.code === ErrorCode.InvalidEnv);
    }
  });
});

describe('parseCniEnv', () => {
  it('ADD and CHECK need container id, ifname and netns', () => {
    for (const cmd of ['ADD', 'CHECK']) {
      assert.deepEqual(parseCniEnv(full(cmd)), {
        command: cmd,
        containerId: 'abc123',
        netns: '/var/run/netns/cni-1234',
        ifName: 'eth0',
        args: {},
      });
      invalidEnv(full(cmd, { CNI_NETNS: undefined }), /CNI_NETNS/);
      invalidEnv(full(cmd, { CNI_NETNS: '' }), /CNI_NETNS/);
      invalidEnv(full(cmd, { CNI_CONTAINERID: undefined }), /CNI_CONTAINERID/);
      invalidEnv(full(cmd, { CNI_CONTAINERID: '' }), /CNI_CONTAINERID/);
      invalidEnv(full(cmd, { CNI_IFNAME: undefined }), /CNI_IFNAME/);
      invalidEnv(full(cmd, { CNI_IFNAME: '' }), /CNI_IFNAME/);
    }
  });

  it('DEL needs container id and ifname but not the netns', () => {
    assert.equal(parseCniEnv(full('DEL', { CNI_NETNS: undefined })).netns, '');
    assert.equal(parseCniEnv(full('DEL', { CNI_NETNS: '' })).netns, '');
    assert.equal(parseCniEnv(full('DEL')).netns, '/var/run/netns/cni-1234');
    invalidEnv(full('DEL', { CNI_CONTAINERID: '' }), /CNI_CONTAINERID/);
    invalidEnv(full('DEL', { CNI_IFNAME: '' }), /CNI_IFNAME/);
    invalidEnv(full('DEL', { CNI_NETNS: 'relative/path' }), /CNI_NETNS/);
  });

  it('GC, STATUS and VERSION need nothing but the command (libcni sets the rest empty)', () => {
    for (const cmd of ['GC', 'STATUS', 'VERSION']) {
      assert.deepEqual(parseCniEnv({ CNI_COMMAND: cmd }), { command: cmd, containerId: '', netns: '', ifName: '', args: {} });
      assert.equal(parseCniEnv({ CNI_COMMAND: cmd, CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '' }).command, cmd);
    }
  });

  it('ifname: 15 characters are fine, 16 are not; no "/", whitespace, "." or ".."', () => {
    assert.equal(parseCniEnv(full('ADD', { CNI_IFNAME: 'abcdefghijklmno' })).ifName, 'abcdefghijklmno');
    invalidEnv(full('ADD', { CNI_IFNAME: 'abcdefghijklmnop' }), /CNI_IFNAME/);
    for (const bad of ['a/b', '/', 'eth 0', '.', '..', 'eth0\n', 'eth:0', 'eth0@x']) invalidEnv(full('ADD', { CNI_IFNAME: bad }), /CNI_IFNAME/);
    for (const good of ['eth0', 'net1', 'e', 'a.b', 'x_y-z']) assert.equal(parseCniEnv(full('DEL', { CNI_IFNAME: good })).ifName, good);
  });

  it('container id: letters, digits, "_", ".", "-", starting alphanumeric, at most 128', () => {
    const ok = ['abc', 'A1', '0123456789abcdef'.repeat(4), 'pod_1.x-y', 'z'.repeat(128)];
    for (const id of ok) assert.equal(parseCniEnv(full('ADD', { CNI_CONTAINERID: id })).containerId, id);
    const bad = ['-abc', '.abc', '_abc', 'a/b', '../x', 'a b', 'a@b', 'a\nb', 'a;b', 'ü', 'z'.repeat(129), 'z'.repeat(257)];
    for (const id of bad) invalidEnv(full('ADD', { CNI_CONTAINERID: id }), /CNI_CONTAINERID/);
  });

  it('netns: an absolute path without whitespace or ".."', () => {
    for (const p of ['/proc/1234/ns/net', '/var/run/netns/cni-5a1c-3b', '/run/netns/x@y:z']) assert.equal(parseCniEnv(full('ADD', { CNI_NETNS: p })).netns, p);
    for (const p of ['netns', './x', '/var/run/netns/../../etc', '/a b', '/a\nb', '/x;rm']) invalidEnv(full('ADD', { CNI_NETNS: p }), /CNI_NETNS/);
  });

  it('carries CNI_ARGS', () => {
    const env = parseCniEnv(full('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0' }));
    assert.deepEqual(env.args, { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'web-0' });
  });
});

describe('parseCniArgs', () => {
  it('K=V pairs separated by ";"', () => {
    assert.deepEqual(parseCniArgs(''), {});
    assert.deepEqual(parseCniArgs('A=1'), { A: '1' });
    assert.deepEqual(parseCniArgs('A=1;B=2'), { A: '1', B: '2' });
    assert.deepEqual(parseCniArgs('A=1;;B=2;'), { A: '1', B: '2' });
    assert.deepEqual(parseCniArgs('A='), { A: '' });
    assert.deepEqual(parseCniArgs('A=x=y'), { A: 'x=y' }, 'the value keeps its "="');
    assert.deepEqual(parseCniArgs('=v;noequals;B=2'), { B: '2' }, 'pairs without a key are skipped');
    assert.deepEqual(parseCniArgs('A=1;A=2'), { A: '2' }, 'the last one wins');
  });
});
