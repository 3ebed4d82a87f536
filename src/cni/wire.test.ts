import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WIRE_MAGIC, WIRE_VARS, isOtherWireVersion, parseRequest, renderRequest, renderResponse } from './wire.js';

const line = fc.string({ maxLength: 40 }).filter((s) => !s.includes('\n'));

describe('CNI socket framing', () => {
  it('round-trips any single-line variables and any stdin (newlines included)', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: WIRE_VARS.length, maxLength: WIRE_VARS.length }), fc.string({ maxLength: 200 }), (values, stdin) => {
        const env = Object.fromEntries(WIRE_VARS.map((v, i) => [v, values[i] ?? '']));
        assert.deepEqual(parseRequest(renderRequest({ env, stdin })), { env, stdin });
      }),
      { numRuns: 300 },
    );
  });

  it('is what the sh shim sends: magic, one line per variable, a blank line, then the config', () => {
    const text = `${WIRE_MAGIC}\nADD\nc1\n/run/netns/p\neth0\n\n/opt/cni/bin\n\n{"cniVersion":"1.1.0"}`;
    const req = parseRequest(text);
    assert.equal(req?.env.CNI_COMMAND, 'ADD');
    assert.equal(req?.env.CNI_ARGS, '');
    assert.equal(req?.env.CNI_PATH, '/opt/cni/bin');
    assert.equal(req?.stdin, '{"cniVersion":"1.1.0"}');
  });

  it('carries nothing about the caller: the agent asks the kernel', () => {
    assert.deepEqual([...WIRE_VARS], ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']);
  });

  it('tells a request of another protocol version from garbage', () => {
    // Version 1 shims sent their netns as a seventh line; the agent declines them (they run standalone).
    assert.equal(isOtherWireVersion('TWILL-CNI 1\nADD\nc1\n/run/netns/p\neth0\n\n/opt/cni/bin\nnet:[1]\n\n{}'), true);
    assert.equal(isOtherWireVersion('TWILL-CNI 3'), true);
    assert.equal(isOtherWireVersion(`${WIRE_MAGIC}\nADD`), false);
    assert.equal(isOtherWireVersion('GET / HTTP/1.1\r\n'), false);
    assert.equal(parseRequest('TWILL-CNI 1\nADD\nc1\n/run/netns/p\neth0\n\n/opt/cni/bin\nnet:[1]\n\n{}'), undefined);
  });

  it('rejects other protocols, truncated headers and a missing separator', () => {
    assert.equal(parseRequest('GET / HTTP/1.1\n\n'), undefined);
    assert.equal(parseRequest(`${WIRE_MAGIC}\nADD\nc1`), undefined);
    assert.equal(parseRequest(`${WIRE_MAGIC}\n${WIRE_VARS.map(() => 'x').join('\n')}\nnot-blank\n{}`), undefined);
  });

  it('answers the exit status on the first line', () => {
    assert.equal(renderResponse(0, '{"a":1}\n'), '0\n{"a":1}\n');
    assert.equal(renderResponse(1, ''), '1\n');
  });
});
