import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListen } from './listen.js';
import { ipMasqOn, parseAgentOptions } from './options.js';

describe('twilld options', () => {
  it('flags win over environment, environment over defaults', () => {
    const r = parseAgentOptions(['--node-name', 'n1', '--etcd-endpoints', 'http://192.0.2.1:2379, http://192.0.2.2:2379'], {
      TWILL_NODE_NAME: 'from-env',
      TWILL_PUBLIC_IP: '192.0.2.10',
      HOSTNAME: 'host',
    });
    assert.ok(r.ok);
    assert.equal(r.options.nodeName, 'n1');
    assert.deepEqual(r.options.etcdEndpoints, ['http://192.0.2.1:2379', 'http://192.0.2.2:2379']);
    assert.equal(r.options.publicIp, '192.0.2.10');
    assert.equal(r.options.subnetFile, '/run/twill/subnet.env');
    assert.equal(r.options.cniSocket, '/run/twill/cni.sock');
    assert.equal(r.options.healthListen, '127.0.0.1:9402');
    assert.equal(r.options.resyncIntervalSeconds, 10);
    const env = parseAgentOptions([], { HOSTNAME: 'node-7', TWILL_ETCD_ENDPOINTS: 'https://198.51.100.1:2379' });
    assert.ok(env.ok);
    assert.equal(env.options.nodeName, 'node-7');
    assert.deepEqual(env.options.etcdEndpoints, ['https://198.51.100.1:2379']);
  });

  it('rejects bad values with a message naming the option', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--node-name', 'Bad_Name'], /nodeName/],
      [['--node-name', 'n', '--public-ip', '300.1.1.1'], /publicIp/],
      [['--node-name', 'n', '--public-iface', 'a/b'], /publicIface/],
      [['--node-name', 'n', '--subnet-file', 'relative.env'], /subnetFile/],
      [['--node-name', 'n', '--cni-socket', 'x.sock'], /cniSocket/],
      [['--node-name', 'n', '--resync-interval', '0'], /resyncIntervalSeconds/],
      [['--node-name', 'n', '--log-level', 'trace'], /logLevel/],
      [['--node-name', 'n', '--etcd-endpoints', 'not a url'], /etcdEndpoints/],
      [['--no-such-flag'], /unknown option/],
      [['--node-name', 'n', '--etcd-ca', 'ca.pem'], /etcdCa: .*absolute path/],
      [['--node-name', 'n', '--etcd-cert', './c.pem', '--etcd-key', '/k.pem'], /etcdCert: .*absolute path/],
      [['--node-name', 'n', '--etcd-cert', '/c.pem'], /--etcd-cert and --etcd-key go together/],
      [['--node-name', 'n', '--cni-socket', 'run/cni.sock'], /cniSocket/],
      [['--node-name', 'n', '--subnet-file', '../subnet.env'], /subnetFile: .*absolute path/],
      [['--node-name', 'n', '--health-listen', '127.0.0.1:99999'], /healthListen/],
      [['--node-name', 'n', '--health-listen', 'example.com:9402'], /healthListen/],
      [['--node-name', 'n', '--health-listen', '0.0.0.0:9402'], /healthListen: 0\.0\.0\.0:9402 is not a loopback address.*--health-listen-public/],
      [['--node-name', 'n', '--health-listen', '192.0.2.1:9402'], /--health-listen-public/],
      [['--node-name', 'n', '--health-listen', '[::]:9402'], /--health-listen-public/],
      [['--node-name', 'n', '--health-listen', '[2001:db8::1]:9402'], /--health-listen-public/],
      [['--node-name', 'n', '--iface-regex', '('], /ifaceRegex.*valid regular expression/],
      [['--node-name', 'n', '--iface-cidr', '198.51.100.0/33'], /ifaceCidr/],
      [['--node-name', 'n', '--iface-can-reach', 'not-an-ip'], /ifaceCanReach/],
      [['--node-name', 'n', '--public-ip', '192.0.2.1', '--iface-regex', '^eth'], /publicIp: --public-ip names the underlay address itself; drop --iface-regex/],
    ];
    for (const [argv, msg] of cases) {
      const r = parseAgentOptions(argv, {});
      assert.equal(r.ok, false, argv.join(' '));
      if (!r.ok) assert.match(r.errors.join('; '), msg, argv.join(' '));
    }
    const off = parseAgentOptions(['--node-name', 'n', '--cni-socket', ''], {});
    assert.ok(off.ok && off.options.cniSocket === '', 'an empty socket path turns the CNI socket off');
  });

  it('serves health on loopback (IPv4, [::1], localhost); anywhere else only with --health-listen-public', () => {
    for (const listen of ['127.0.0.1:9402', '127.0.0.53:1', '[::1]:9402', '[0:0:0:0:0:0:0:1]:9402', '[::ffff:127.0.0.1]:9402', 'localhost:9402', '127.0.0.1:0']) {
      const r = parseAgentOptions(['--node-name', 'n', '--health-listen', listen], {});
      assert.ok(r.ok, `${listen}: ${r.ok ? '' : r.errors.join('; ')}`);
    }
    for (const listen of ['0.0.0.0:9402', '192.0.2.1:9402', '[::]:9402']) {
      const r = parseAgentOptions(['--node-name', 'n', '--health-listen', listen, '--health-listen-public'], {});
      assert.ok(r.ok && r.options.healthListenPublic === true, listen);
    }
    assert.deepEqual(parseListen('[::1]:9402'), { host: '::1', port: 9402, loopback: true });
    assert.deepEqual(parseListen('10.0.0.1:80'), { host: '10.0.0.1', port: 80, loopback: false });
    assert.equal(parseListen('[::1]'), undefined);
    assert.equal(parseListen('[::g]:1'), undefined);
  });

  it('--help and --version are answers, not errors', () => {
    const help = parseAgentOptions(['--help'], {}, '9.9.9');
    assert.ok(!help.ok && help.errors.length === 0);
    assert.match(help.help ?? '', /^Usage: twilld \[options\]/);
    for (const flag of ['--iface-regex', '--iface-cidr', '--iface-can-reach', '--ip-masq', '--no-ip-masq', '--health-listen-public']) assert.ok(help.help?.includes(flag), flag);
    for (const argv of [['--version'], ['-v']]) {
      const v = parseAgentOptions(argv, {}, '9.9.9');
      assert.ok(!v.ok && v.errors.length === 0);
      assert.equal(v.help, '9.9.9\n');
    }
  });

  it('underlay selection flags: repeatable regexes, comma lists, environment', () => {
    const r = parseAgentOptions(['--node-name', 'n', '--iface-regex', '^eth[0-9]{1,2}$', '--iface-regex', '^ens', '--iface-cidr', '198.51.100.0/24, 203.0.113.0/24', '--iface-can-reach', '192.0.2.9'], {});
    assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
    assert.deepEqual(r.options.ifaceRegex, ['^eth[0-9]{1,2}$', '^ens'], 'a comma inside a regex is kept');
    assert.deepEqual(r.options.ifaceCidr, ['198.51.100.0/24', '203.0.113.0/24']);
    assert.equal(r.options.ifaceCanReach, '192.0.2.9');
    const env = parseAgentOptions(['--node-name', 'n'], { TWILL_IFACE_REGEX: '^eth1$,^eth2$', TWILL_IFACE_CIDR: '198.51.100.0/24', TWILL_IFACE_CAN_REACH: '192.0.2.9' });
    assert.ok(env.ok);
    assert.deepEqual(env.options.ifaceRegex, ['^eth1$', '^eth2$']);
    assert.deepEqual(env.options.ifaceCidr, ['198.51.100.0/24']);
    assert.equal(env.options.ifaceCanReach, '192.0.2.9');
  });

  it('--ip-masq is a switch: on by default, off with --no-ip-masq or TWILL_IP_MASQ=false, flag over env', () => {
    const opts = (argv: string[], env: Record<string, string> = {}): ReturnType<typeof parseAgentOptions> => parseAgentOptions(['--node-name', 'n', ...argv], env);
    const on = opts([]);
    assert.ok(on.ok && on.options.ipMasq === true && ipMasqOn(on.options));
    const off = opts(['--no-ip-masq']);
    assert.ok(off.ok && off.options.ipMasq === false && !ipMasqOn(off.options));
    const envOff = opts([], { TWILL_IP_MASQ: 'false' });
    assert.ok(envOff.ok && envOff.options.ipMasq === false);
    const flagWins = opts(['--ip-masq'], { TWILL_IP_MASQ: '0' });
    assert.ok(flagWins.ok && flagWins.options.ipMasq === true);
    const bad = opts([], { TWILL_IP_MASQ: 'maybe' });
    assert.ok(!bad.ok && /TWILL_IP_MASQ=maybe: true or false/.test(bad.errors.join('; ')));
    assert.equal(ipMasqOn({}), true, 'options built without the field (tests, embedders) keep masquerade on');
  });

  it('--public-ipv6 / TWILL_PUBLIC_IPV6: a canonical IPv6 unicast address, absent by default', () => {
    const none = parseAgentOptions(['--node-name', 'n'], {});
    assert.ok(none.ok);
    assert.equal(none.options.publicIpv6, undefined);
    const flag = parseAgentOptions(['--node-name', 'n', '--public-ipv6', '2001:db8::10'], { TWILL_PUBLIC_IPV6: '2001:db8::99' });
    assert.ok(flag.ok);
    assert.equal(flag.options.publicIpv6, '2001:db8::10');
    const env = parseAgentOptions(['--node-name', 'n'], { TWILL_PUBLIC_IPV6: '2001:db8::99' });
    assert.ok(env.ok);
    assert.equal(env.options.publicIpv6, '2001:db8::99');
    for (const bad of ['192.0.2.1', '2001:DB8::10', '::ffff:192.0.2.1', '::', 'fe80::1%eth0']) {
      const r = parseAgentOptions(['--node-name', 'n', '--public-ipv6', bad], {});
      assert.ok(!r.ok && r.errors.some((e) => e.startsWith('publicIpv6: public IPv6')), bad);
    }
  });
});
