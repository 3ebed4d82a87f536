import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { POD_MTU_MAX, POD_MTU_MIN } from './constants.js';
import { ErrorCode, isTwillError } from './errors.js';
import { parseSubnetEnv, renderSubnetEnv, type SubnetEnv } from './subnet-env.js';

describe('parseSubnetEnv', () => {
  it('reads the four keys', () => {
    assert.deepEqual(parseSubnetEnv('TWILL_NETWORK=10.244.0.0/16\nTWILL_SUBNET=10.244.1.1/24\nTWILL_MTU=1450\nTWILL_IPMASQ=true\n'), {
      network: '10.244.0.0/16',
      subnet: '10.244.1.1/24',
      mtu: 1450,
      ipMasq: true,
    });
  });

  it('tolerates comments, blank lines, CRLF, spaces around "=", quotes and unknown keys', () => {
    const text = '# written by twill-agent\r\n\r\n  TWILL_NETWORK = "10.244.0.0/16"\r\nFLANNEL_MTU=1400\r\nTWILL_SUBNET=10.244.1.1/24\r\nnot a pair\r\nTWILL_IPMASQ=false\r\n';
    assert.deepEqual(parseSubnetEnv(text), { network: '10.244.0.0/16', subnet: '10.244.1.1/24', ipMasq: false });
  });

  it('rejects a TWILL_MTU or TWILL_IPMASQ the kernel must not see, with code 7 naming the key', () => {
    for (const bad of ['TWILL_MTU=abc', 'TWILL_MTU=-5', 'TWILL_MTU=', 'TWILL_MTU=575', 'TWILL_MTU=65536', 'TWILL_MTU=1450.5', 'TWILL_MTU=99999999999', 'TWILL_MTU=0x5aa']) {
      assert.throws(() => parseSubnetEnv(`${bad}\n`), (e: unknown) => isTwillError(e) && e.code === ErrorCode.InvalidConfig && e.message.startsWith('TWILL_MTU='), bad);
    }
    for (const bad of ['yes', 'TRUE', '1', '']) {
      assert.throws(() => parseSubnetEnv(`TWILL_IPMASQ=${bad}`), (e: unknown) => isTwillError(e) && e.code === ErrorCode.InvalidConfig && e.message.startsWith('TWILL_IPMASQ='), bad);
    }
    assert.deepEqual(parseSubnetEnv('TWILL_MTU=576\nTWILL_IPMASQ=false'), { mtu: 576, ipMasq: false });
    assert.deepEqual(parseSubnetEnv('TWILL_MTU=65535'), { mtu: 65535 });
  });

  it('an empty file is an empty env; the last assignment wins', () => {
    assert.deepEqual(parseSubnetEnv(''), {});
    assert.deepEqual(parseSubnetEnv('TWILL_MTU=1400\nTWILL_MTU=1450'), { mtu: 1450 });
  });
});

describe('renderSubnetEnv', () => {
  it('renders only what is set, one KEY=value per line, newline-terminated', () => {
    assert.equal(renderSubnetEnv({}), '\n');
    assert.equal(renderSubnetEnv({ subnet: '10.244.1.1/24', mtu: 1450 }), 'TWILL_SUBNET=10.244.1.1/24\nTWILL_MTU=1450\n');
    assert.equal(
      renderSubnetEnv({ network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1450, ipMasq: false }),
      'TWILL_NETWORK=10.244.0.0/16\nTWILL_SUBNET=10.244.1.1/24\nTWILL_MTU=1450\nTWILL_IPMASQ=false\n',
    );
  });

  it('parse(render(x)) = x (property)', () => {
    const octet = fc.nat(255);
    const cidr = fc.tuple(octet, octet, octet, octet, fc.nat(32)).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`);
    const env: fc.Arbitrary<SubnetEnv> = fc.record(
      { network: cidr, subnet: cidr, mtu: fc.integer({ min: POD_MTU_MIN, max: POD_MTU_MAX }), ipMasq: fc.boolean() },
      { requiredKeys: [], noNullPrototype: true },
    );
    fc.assert(
      fc.property(env, (e) => {
        assert.deepEqual(parseSubnetEnv(renderSubnetEnv(e)), e);
      }),
      { numRuns: 300 },
    );
  });

  it('dual stack: TWILL_IPV6_NETWORK and TWILL_IPV6_SUBNET round-trip next to the IPv4 keys', () => {
    const e = { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1450, ipMasq: true, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:1::1/64' };
    const text = renderSubnetEnv(e);
    assert.match(text, /^TWILL_IPV6_NETWORK=fd00:10:244::\/56$/m);
    assert.match(text, /^TWILL_IPV6_SUBNET=fd00:10:244:1::1\/64$/m);
    assert.deepEqual(parseSubnetEnv(text), e);
    assert.doesNotMatch(renderSubnetEnv({ network: '10.244.0.0/16' }), /IPV6/);
  });
});

