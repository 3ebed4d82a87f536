import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAgentOptions } from './options.js';

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
    ];
    for (const [argv, msg] of cases) {
      const r = parseAgentOptions(argv, {});
      assert.equal(r.ok, false, argv.join(' '));
      if (!r.ok) assert.match(r.errors.join('; '), msg, argv.join(' '));
    }
    const off = parseAgentOptions(['--node-name', 'n', '--cni-socket', ''], {});
    assert.ok(off.ok && off.options.cniSocket === '', 'an empty socket path turns the CNI socket off');
  });
});
