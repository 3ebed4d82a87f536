import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { probeLine, renderMatrix, runProbes, type Probe, type ProbeResult } from './lab/connectivity.js';
import { render } from './output.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, 'main.js');
const ROOT = path.resolve(here, '../../..');
const dir = mkdtempSync(path.join(tmpdir(), 'twill-cli-out-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The CLI as a user runs it (no datastore needed: every case fails or finishes before one is asked). */
function twill(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { timeout: 20_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: '' } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

describe('-o text|json|yaml', () => {
  it('renders one value three ways', () => {
    const data = { nodes: [{ name: 'node1', subnet: '10.244.1.0/24' }], invalidLeases: [] };
    assert.deepEqual(render('text', data, () => ['NAME  SUBNET']), ['NAME  SUBNET']);
    assert.deepEqual(JSON.parse(render('json', data, () => []).join('\n')), data);
    assert.deepEqual(parseYaml(render('yaml', data, () => []).join('\n')), data);
  });

  it('every command with -o rejects anything but text|json|yaml with exit status 2, before doing anything', async () => {
    const commands = [
      ['config', 'get'],
      ['config', 'set', path.join(dir, 'missing.json')],
      ['nodes'],
      ['status'],
      ['ipam', 'show', '--data-dir', dir],
      ['ipam', 'check', '--data-dir', dir],
      ['lab', 'status', '--name', 'nosuchlab'],
      ['connectivity', 'test', '--lab', 'nosuchlab'],
    ];
    const replies = await Promise.all(commands.map((c) => twill([...c, '-o', 'xml'])));
    for (const [k, c] of commands.entries()) {
      const r = replies[k] as Awaited<ReturnType<typeof twill>>;
      assert.equal(r.status, 2, `${c.join(' ')} -o xml: ${r.stderr}`);
      assert.match(r.stderr, /option '-o, --output <format>' argument 'xml' is invalid\. Allowed choices are text, json, yaml/, c.join(' '));
      assert.equal(r.stdout, '', c.join(' '));
    }
    assert.equal((await twill(['nodes', '--no-such-flag'])).status, 2, 'any usage error is exit 2');
  });

  it('json and yaml print the same data', async () => {
    const [json, yaml, lab] = await Promise.all([
      twill(['ipam', 'show', '--data-dir', dir, '-o', 'json']),
      twill(['ipam', 'show', '--data-dir', dir, '-o', 'yaml']),
      twill(['lab', 'status', '--name', 'nosuchlab', '-o', 'yaml']),
    ]);
    assert.equal(json.status, 0, json.stderr);
    assert.equal(yaml.status, 0, yaml.stderr);
    assert.deepEqual(JSON.parse(json.stdout), []);
    assert.deepEqual(parseYaml(yaml.stdout), []);
    assert.equal(lab.status, 0);
    assert.equal(parseYaml(lab.stdout), null);
  });

  it('twill --version prints the package version', async () => {
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-v']) {
      const r = await twill([flag]);
      assert.equal(r.status, 0);
      assert.equal(r.stdout, `${version}\n`);
    }
  });
});

describe('connectivity test progress', () => {
  const probes: Probe[] = [
    { from: 'pod1-1', fromNetns: 'a', to: 'pod2-1', ip: '10.244.2.2', tcp: true },
    { from: 'pod1-1', fromNetns: 'a', to: 'node2', ip: '192.0.2.12', tcp: false },
    { from: 'pod2-1', fromNetns: 'b', to: 'pod1-1', ip: '10.244.1.2', tcp: true },
  ];
  it('reports each probe as soon as it completes, before the next one starts', () => {
    const events: string[] = [];
    const results = runProbes(probes, {
      probe: (p) => {
        events.push(`start ${p.to}`);
        return { ...p, icmp: p.to !== 'node2', tcpOk: p.tcp ? p.from !== 'pod2-1' : undefined };
      },
      onResult: (r, i, n) => events.push(probeLine(r, i, n)),
    });
    assert.deepEqual(events, [
      'start pod2-1',
      '[1/3] pod1-1 -> pod2-1 10.244.2.2 icmp+tcp: ok',
      'start node2',
      '[2/3] pod1-1 -> node2 192.0.2.12 icmp: FAIL-icmp',
      'start pod1-1',
      '[3/3] pod2-1 -> pod1-1 10.244.1.2 icmp+tcp: FAIL-tcp',
    ]);
    assert.equal(renderMatrix(results as ProbeResult[]).at(-1), 'connectivity: 1 of 3 probes ok, 2 FAILED');
  });
});
