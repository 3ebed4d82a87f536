import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { hostVethName, isOurVeth, isStaleOwnVeth, isTmpVeth, parseVethAlias, renderVethAlias, tmpVethName } from './naming.js';

const idArb = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/);
const ifArb = fc.stringMatching(/^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,14}$/);
const netArb = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,30}$/);

describe('hostVethName', () => {
  it('twl + 12 hex of sha256(containerId/ifName): 15 characters (IFNAMSIZ - 1)', () => {
    const a = { containerId: 'abc123', ifName: 'eth0' };
    const expected = `twl${createHash('sha256').update('abc123/eth0').digest('hex').slice(0, 12)}`;
    assert.equal(hostVethName(a), expected);
    assert.equal(hostVethName(a).length, 15);
  });

  it('stable, 15 characters, recognised as ours (property)', () => {
    fc.assert(
      fc.property(idArb, ifArb, (containerId, ifName) => {
        const n = hostVethName({ containerId, ifName });
        assert.equal(n.length, 15);
        assert.ok(n.startsWith('twl'));
        assert.match(n, /^twl[0-9a-f]{12}$/);
        assert.equal(hostVethName({ containerId, ifName }), n);
        assert.ok(isOurVeth(n));
      }),
      { numRuns: 300 },
    );
  });

  it('differs for different ifNames of one container and for different containers (property)', () => {
    fc.assert(
      fc.property(idArb, ifArb, ifArb, (containerId, if1, if2) => {
        fc.pre(if1 !== if2);
        assert.notEqual(hostVethName({ containerId, ifName: if1 }), hostVethName({ containerId, ifName: if2 }));
      }),
      { numRuns: 300 },
    );
    assert.notEqual(hostVethName({ containerId: 'a', ifName: 'eth0' }), hostVethName({ containerId: 'b', ifName: 'eth0' }));
    // The separator keeps "a/b" + "c" apart from "a" + "b/c"-like splits.
    assert.notEqual(hostVethName({ containerId: 'ab', ifName: 'c' }), hostVethName({ containerId: 'a', ifName: 'bc' }));
  });
});

describe('isOurVeth', () => {
  it('only twl + exactly 12 lower-case hex digits', () => {
    assert.ok(isOurVeth('twl0123456789ab'));
    for (const n of ['twl0123456789a', 'twl0123456789abc', 'twl0123456789AB', 'twl0123456789ag', 'cni0', 'eth0', 'veth0123456789', 'tw0123456789abc', 'TWL0123456789ab', '']) {
      assert.equal(isOurVeth(n), false, n);
    }
  });
});

describe('veth alias', () => {
  it('renders twill/<network>/<containerId>/<ifName>', () => {
    assert.equal(renderVethAlias('k8s-pod-network', { containerId: 'abc', ifName: 'eth0' }), 'twill/k8s-pod-network/abc/eth0');
  });

  it('parse(render(x)) = x (property)', () => {
    fc.assert(
      fc.property(netArb, idArb, ifArb, (network, containerId, ifName) => {
        assert.deepEqual(parseVethAlias(renderVethAlias(network, { containerId, ifName })), { network, attachment: { containerId, ifName } });
      }),
      { numRuns: 300 },
    );
  });

  it('rejects other aliases', () => {
    for (const a of ['', 'twill/', 'twill/net/abc', 'twill/net/abc/eth0/x', 'twill//abc/eth0', 'twill/net//eth0', 'twill/net/abc/', 'calico/net/abc/eth0', 'Twill/net/abc/eth0']) {
      assert.equal(parseVethAlias(a), undefined, a);
    }
  });
});

describe('temporary veth names and stale-own check', () => {
  it('tmpVethName: twn + 12 hex, never a twl name, distinct across calls', () => {
    const names = new Set(Array.from({ length: 1000 }, () => tmpVethName()));
    assert.equal(names.size, 1000);
    for (const n of names) {
      assert.ok(isTmpVeth(n), n);
      assert.equal(isOurVeth(n), false, n);
      assert.ok(n.length <= 15);
    }
    assert.equal(tmpVethName(() => 0), 'twn000000000000');
    assert.equal(isTmpVeth('twl0123456789ab'), false);
  });

  it('isStaleOwnVeth: only a veth whose alias names this attachment', () => {
    const alias = renderVethAlias('net', { containerId: 'c1', ifName: 'eth0' });
    assert.equal(isStaleOwnVeth({ ifalias: alias, linkinfo: { info_kind: 'veth' } }, alias), true);
    assert.equal(isStaleOwnVeth({ ifalias: renderVethAlias('net', { containerId: 'c2', ifName: 'eth0' }), linkinfo: { info_kind: 'veth' } }, alias), false);
    assert.equal(isStaleOwnVeth({ linkinfo: { info_kind: 'veth' } }, alias), false);
    assert.equal(isStaleOwnVeth({ ifalias: alias, linkinfo: { info_kind: 'bridge' } }, alias), false);
    assert.equal(isStaleOwnVeth({ ifalias: alias }, alias), false);
  });
});
