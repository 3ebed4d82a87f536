import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SUPPORTED_VERSIONS, type CniVersion } from '../common/constants.js';
import { fromWire, toWire, versionAtLeast, type CniResult } from './result.js';

const sample: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '0e:58:0a:f4:01:01' },
    { name: 'twl0123456789ab', mac: '0e:58:0a:f4:01:05', mtu: 1450 },
    { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/var/run/netns/p', mtu: 1450 },
  ],
  ips: [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '10.96.0.0/12' }],
  dns: {},
};

describe('versionAtLeast', () => {
  it('compares numerically, part by part', () => {
    assert.ok(versionAtLeast('1.1.0', '1.0.0'));
    assert.ok(versionAtLeast('1.0.0', '1.0.0'));
    assert.ok(versionAtLeast('0.4.0', '0.4.0'));
    assert.ok(!versionAtLeast('0.3.1', '0.4.0'));
    assert.ok(versionAtLeast('0.10.0', '0.4.0'));
    assert.ok(!versionAtLeast('0.4.0', '1.0.0'));
    assert.ok(versionAtLeast('1.1', '1.1.0'));
  });
});

describe('toWire', () => {
  it('0.3.0, 0.3.1 and 0.4.0: ips[].version "4", no interface mtu', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
      assert.deepEqual(toWire(sample, v), {
        cniVersion: v,
        interfaces: [
          { name: 'cni0', mac: '0e:58:0a:f4:01:01' },
          { name: 'twl0123456789ab', mac: '0e:58:0a:f4:01:05' },
          { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/var/run/netns/p' },
        ],
        ips: [{ version: '4', address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }],
        routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '10.96.0.0/12' }],
        dns: {},
      });
    }
  });

  it('1.0.0: no ips[].version, no interface mtu', () => {
    const w = toWire(sample, '1.0.0');
    assert.deepEqual(w.ips, [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }]);
    assert.deepEqual(w.interfaces, [
      { name: 'cni0', mac: '0e:58:0a:f4:01:01' },
      { name: 'twl0123456789ab', mac: '0e:58:0a:f4:01:05' },
      { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/var/run/netns/p' },
    ]);
  });

  it('1.1.0: interfaces[].mtu', () => {
    const w = toWire(sample, '1.1.0');
    assert.equal(w.cniVersion, '1.1.0');
    assert.deepEqual(w.ips, [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }]);
    assert.deepEqual(w.interfaces, [
      { name: 'cni0', mac: '0e:58:0a:f4:01:01' },
      { name: 'twl0123456789ab', mac: '0e:58:0a:f4:01:05', mtu: 1450 },
      { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/var/run/netns/p', mtu: 1450 },
    ]);
  });

  it('answers in the requested version, not the result`s own; always has dns', () => {
    const w = toWire({ cniVersion: '0.3.1' }, '1.1.0');
    assert.deepEqual(w, { cniVersion: '1.1.0', dns: {} });
  });

  it('emits plain JSON (no undefined values)', () => {
    for (const v of SUPPORTED_VERSIONS) {
      const w = toWire({ cniVersion: v, ips: [{ address: '10.0.0.2/24' }], routes: [{ dst: '0.0.0.0/0' }], interfaces: [{ name: 'e', mac: '' }] }, v);
      assert.deepEqual(JSON.parse(JSON.stringify(w)), w);
    }
  });
});

const name = fc.stringMatching(/^[a-z0-9]{1,15}$/);
const dotted = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const resultArb: fc.Arbitrary<CniResult> = fc.record(
  {
    cniVersion: fc.constantFrom(...SUPPORTED_VERSIONS),
    interfaces: fc.array(
      fc.record(
        { name, mac: fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)), sandbox: fc.stringMatching(/^\/[a-z0-9/]{1,20}$/), mtu: fc.integer({ min: 576, max: 65535 }) },
        { requiredKeys: ['name', 'mac'], noNullPrototype: true },
      ),
      { maxLength: 4 },
    ),
    ips: fc.array(
      fc.record({ address: fc.tuple(dotted, fc.nat(32)).map(([a, p]) => `${a}/${p}`), gateway: dotted, interface: fc.nat(3) }, { requiredKeys: ['address'], noNullPrototype: true }),
      { maxLength: 3 },
    ),
    routes: fc.array(fc.record({ dst: fc.tuple(dotted, fc.nat(32)).map(([a, p]) => `${a}/${p}`), gw: dotted }, { requiredKeys: ['dst'], noNullPrototype: true }), { maxLength: 3 }),
    dns: fc.record(
      { nameservers: fc.array(dotted, { maxLength: 2 }), domain: name, search: fc.array(name, { maxLength: 2 }), options: fc.array(name, { maxLength: 2 }) },
      { requiredKeys: [], noNullPrototype: true },
    ),
  },
  { requiredKeys: ['cniVersion'], noNullPrototype: true },
);

describe('fromWire', () => {
  it('fromWire(toWire(x)) gives x back for 1.1.0, through JSON text (property)', () => {
    fc.assert(
      fc.property(resultArb, (x) => {
        const back = fromWire(JSON.parse(JSON.stringify(toWire(x, '1.1.0'))));
        assert.deepEqual(back, { ...x, cniVersion: '1.1.0', dns: x.dns ?? {} });
      }),
      { numRuns: 300 },
    );
  });

  it('older versions lose only interfaces[].mtu (property)', () => {
    fc.assert(
      fc.property(resultArb, fc.constantFrom<CniVersion>('0.3.0', '0.3.1', '0.4.0', '1.0.0'), (x, v) => {
        const back = fromWire(JSON.parse(JSON.stringify(toWire(x, v))));
        const expected: CniResult = { ...x, cniVersion: v, dns: x.dns ?? {} };
        if (x.interfaces) expected.interfaces = x.interfaces.map(({ mtu: _mtu, ...rest }) => rest);
        assert.deepEqual(back, expected);
      }),
      { numRuns: 300 },
    );
  });

  it('reads a real 0.4.0 prevResult (with ips[].version)', () => {
    const r = fromWire({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/proc/1/ns/net' }],
      ips: [{ version: '4', address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.96.0.10'] },
    });
    assert.deepEqual(r, {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/proc/1/ns/net' }],
      ips: [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.96.0.10'] },
    });
  });

  it('rejects malformed results', () => {
    const bad: unknown[] = [
      undefined,
      null,
      42,
      'result',
      { interfaces: [null] },
      { interfaces: ['eth0'] },
      { interfaces: [{ mac: '0a:58:00:00:00:01' }] },
      { interfaces: [{ name: 7 }] },
      { ips: [{}] },
      { ips: [{ address: 5 }] },
      { ips: [42] },
      { routes: [{ gw: '10.0.0.1' }] },
      { routes: [null] },
      { routes: [{ dst: ['0.0.0.0/0'] }] },
    ];
    for (const v of bad) assert.equal(fromWire(v), undefined, JSON.stringify(v));
  });

  it('tolerates missing optional parts and drops wrongly typed optional fields', () => {
    assert.deepEqual(fromWire({}), { cniVersion: '' });
    assert.deepEqual(fromWire({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: 1, mtu: '1500', sandbox: 3 }] }), {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '' }],
    });
  });
});
