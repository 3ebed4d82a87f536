import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../common/errors.js';
import { decide, type CallerFacts } from './admission.js';
import { WIRE_VARS, renderRequest } from './wire.js';

const OWN = 'net:[4026531840]';
const request = renderRequest({ env: Object.fromEntries(WIRE_VARS.map((v) => [v, v === 'CNI_COMMAND' ? 'ADD' : ''])), stdin: '{}' });
const root = (pid: number, netns: string | undefined): CallerFacts => ({ peer: { pid, uid: 0, gid: 0 }, netns });

describe('CNI socket admission', () => {
  it('runs a root caller of the agent namespace', () => {
    const d = decide(request, root(42, OWN), OWN);
    assert.equal(d.kind, 'run');
    assert.equal(d.kind === 'run' ? d.req.env.CNI_COMMAND : '', 'ADD');
  });

  it('refuses a non-root caller with code 110 whatever it sent and wherever it runs', () => {
    for (const text of [request, 'garbage', 'TWILL-CNI 1\n']) {
      for (const netns of [OWN, 'net:[1]', undefined]) {
        const d = decide(text, { peer: { pid: 42, uid: 1000, gid: 1000 }, netns }, OWN);
        assert.equal(d.kind, 'refuse');
        assert.equal(d.kind === 'refuse' ? d.error.code : 0, ErrorCode.CallerNotRoot);
      }
    }
  });

  it('declines (standalone) what it cannot verify: no credentials, an invisible pid, another netns', () => {
    assert.equal(decide(request, { peer: undefined, netns: undefined }, OWN).kind, 'standalone');
    assert.equal(decide(request, root(0, undefined), OWN).kind, 'standalone');
    assert.equal(decide(request, root(42, 'net:[4026532000]'), OWN).kind, 'standalone');
  });

  it('declines another protocol version and refuses garbage from root with code 4', () => {
    assert.equal(decide('TWILL-CNI 1\nADD\n', root(42, OWN), OWN).kind, 'standalone');
    const d = decide('GET / HTTP/1.1', root(42, OWN), OWN);
    assert.equal(d.kind === 'refuse' ? d.error.code : 0, ErrorCode.InvalidEnv);
  });
});
