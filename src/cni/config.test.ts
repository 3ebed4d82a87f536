import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TwillError } from '../common/errors.js';
import { isSupportedVersion, isValidLinkName, parseNetConf } from './config.js';

const base = {
  cniVersion: '1.1.0',
  name: 'twill',
  type: 'twill',
  ipam: { type: 'twill', subnet: '10.244.1.0/24', dataDir: '/tmp/x' },
};
const json = (over: Record<string, unknown>): string => JSON.stringify({ ...base, ...over });

function fails(stdin: string, code: number, msg?: RegExp): void {
  assert.throws(
    () => parseNetConf(stdin),
    (e: unknown) => {
      assert.ok(e instanceof TwillError, String(e));
      assert.equal(e.code, code, `code for ${stdin}: ${e.message}`);
      if (msg) assert.match(e.message, msg);
      return true;
    },
  );
}

describe('parseNetConf', () => {
  it('accepts a full configuration and keeps unknown keys (runtimeConfig, args, ...)', () => {
    const conf = parseNetConf(
      json({
        mode: 'routed',
        bridge: 'br-twill_0',
        mtu: 1450,
        ipMasq: true,
        hairpinMode: false,
        logFile: '/tmp/l',
        logLevel: 'debug',
        runtimeConfig: { portMappings: [] },
        prevResult: { cniVersion: '1.1.0' },
        'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
      }),
    );
    assert.equal(conf.mode, 'routed');
    assert.equal(conf.mtu, 1450);
    assert.equal(conf.ipam?.subnet, '10.244.1.0/24');
    assert.deepEqual((conf as Record<string, unknown>).runtimeConfig, { portMappings: [] });
  });

  it('accepts the minimal configuration (no ipam section: everything from the subnet file)', () => {
    const conf = parseNetConf(JSON.stringify({ cniVersion: '0.3.1', name: 'n', type: 'twill' }));
    assert.equal(conf.ipam, undefined);
    assert.equal(conf.mode, undefined);
  });

  it('every supported version parses', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) assert.equal(parseNetConf(json({ cniVersion: v })).cniVersion, v);
  });

  it('malformed JSON -> 6', () => {
    for (const stdin of ['', '{', '{"cniVersion":"1.1.0",}', 'not json', '{"a":1}}']) fails(stdin, ErrorCode.DecodeFailure);
  });

  it('unsupported version -> 1', () => {
    for (const v of ['0.1.0', '0.2.0', '1.2.0', '2.0.0', '1.1', '']) fails(json({ cniVersion: v }), ErrorCode.IncompatibleVersion, /not supported/);
  });

  it('valid JSON of the wrong shape -> 7', () => {
    for (const stdin of ['null', '[]', '"x"', '42', 'true']) fails(stdin, ErrorCode.InvalidConfig);
  });

  it('wrong types -> 7 naming the field path', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ cniVersion: 110 }, /cniVersion/],
      [{ name: 3 }, /\bname\b/],
      [{ name: undefined }, /\bname\b/],
      [{ type: null }, /\btype\b/],
      [{ mtu: '1450' }, /\bmtu\b/],
      [{ mtu: 1450.5 }, /\bmtu\b/],
      [{ mtu: 100 }, /\bmtu\b/],
      [{ mtu: 70000 }, /\bmtu\b/],
      [{ mode: 'vxlan' }, /\bmode\b/],
      [{ ipMasq: 'true' }, /\bipMasq\b/],
      [{ hairpinMode: 1 }, /\bhairpinMode\b/],
      [{ logLevel: 'trace' }, /\blogLevel\b/],
      [{ bridge: 7 }, /\bbridge\b/],
      [{ ipam: 'twill' }, /\bipam\b/],
      [{ ipam: { type: 'twill', subnet: 24 } }, /ipam\.subnet/],
      [{ ipam: { type: 'twill', routes: [{ dst: '0.0.0.0/0', gw: 1 }] } }, /ipam\.routes\.0\.gw/],
      [{ ipam: { type: 'twill', routes: {} } }, /ipam\.routes/],
      [{ ipam: { type: 'twill', dataDir: false } }, /ipam\.dataDir/],
      [{ ipam: { subnet: '10.0.0.0/24' } }, /ipam\.type/],
      [{ 'cni.dev/valid-attachments': [{ containerID: 'c' }] }, /cni\.dev\/valid-attachments\.0\.ifname/],
      [{ 'cni.dev/valid-attachments': 'all' }, /cni\.dev\/valid-attachments/],
    ];
    for (const [over, where] of cases) fails(json(over), ErrorCode.InvalidConfig, where);
  });

  it('a bad network name -> 7', () => {
    for (const name of ['', '-twill', '.twill', '..', 'a/b', 'a b', 'a\nb', 'tw@ll', 'ünï']) fails(json({ name }), ErrorCode.InvalidConfig, /name/);
    for (const name of ['twill', 'k8s-pod-network', 'a.b_c-1', '0']) assert.equal(parseNetConf(json({ name })).name, name);
  });

  it('a bad bridge name -> 7', () => {
    for (const bridge of ['', '.', '..', 'a/b', 'abcdefghijklmnop', 'br 0']) fails(json({ bridge }), ErrorCode.InvalidConfig, /bridge/);
    assert.equal(parseNetConf(json({ bridge: 'abcdefghijklmno' })).bridge, 'abcdefghijklmno');
  });

  it('a relative (or empty) logFile, ipam.dataDir or ipam.subnetFile -> 7 naming the field', () => {
    for (const bad of ['', 'twill.log', './twill.log', 'var/lib/twill', '~/x', '/tmp/a\u0000b']) {
      fails(json({ logFile: bad }), ErrorCode.InvalidConfig, /^invalid network configuration: logFile: expected an absolute path/);
      fails(json({ ipam: { type: 'twill', dataDir: bad } }), ErrorCode.InvalidConfig, /ipam\.dataDir: expected an absolute path/);
      fails(json({ ipam: { type: 'twill', subnetFile: bad } }), ErrorCode.InvalidConfig, /ipam\.subnetFile: expected an absolute path/);
    }
    const ok = parseNetConf(json({ logFile: '/var/log/twill.log', ipam: { type: 'twill', dataDir: '/var/lib/twill/ipam', subnetFile: '/run/twill/subnet.env' } }));
    assert.equal(ok.ipam?.dataDir, '/var/lib/twill/ipam');
  });

  it('ipam type other than twill -> 7', () => {
    for (const type of ['host-local', 'dhcp', '', 'Twill']) fails(json({ ipam: { type } }), ErrorCode.InvalidConfig, /ipam type/);
  });

  it('the version check comes before name and ipam checks', () => {
    fails(json({ cniVersion: '0.2.0', name: '-bad', ipam: { type: 'host-local' } }), ErrorCode.IncompatibleVersion);
  });
});

describe('isSupportedVersion / isValidLinkName', () => {
  it('versions', () => {
    assert.ok(isSupportedVersion('1.1.0'));
    assert.ok(isSupportedVersion('0.3.0'));
    assert.ok(!isSupportedVersion('0.2.0'));
    assert.ok(!isSupportedVersion('1.1.0 '));
  });
  it('link names: 1..15 safe characters, not . or ..', () => {
    for (const n of ['eth0', 'net1', 'a', 'abcdefghijklmno', 'a.b', 'x-y_z']) assert.ok(isValidLinkName(n), n);
    for (const n of ['', '.', '..', 'abcdefghijklmnop', 'a/b', 'a b', 'a:b', 'eth0\n']) assert.ok(!isValidLinkName(n), JSON.stringify(n));
  });
});
