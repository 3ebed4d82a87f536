import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../common/json-log.js';
import { productionDeps } from '../cni/deps-factory.js';
import type { NetConf } from '../cni/config.js';
import { createAgentLogger } from './log.js';

type Line = Record<string, unknown>;
const lines = (chunks: string[]): Line[] => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

/** The schema every Twill log line has: level label, ISO time, context, msg; in that order. */
function assertSchema(line: Line, where: string): void {
  const keys = Object.keys(line);
  assert.deepEqual(keys.slice(0, 2), ['level', 'time'], `${where}: level and time lead`);
  assert.equal(keys.at(-1), 'msg', `${where}: msg closes the line`);
  assert.ok(['debug', 'info', 'warn', 'error', 'fatal'].includes(line.level as string), `${where}: level ${JSON.stringify(line.level)} is a label`);
  assert.equal(typeof line.time, 'string', `${where}: time is a string`);
  assert.equal(new Date(line.time as string).toISOString(), line.time, `${where}: time is ISO 8601 UTC`);
  assert.equal(typeof line.msg, 'string', `${where}: msg is a string`);
}

describe('one log schema', () => {
  it('the agent (pino), the plugin\'s writer and plugin calls served through the agent write the same keys and types', () => {
    const agentOut: string[] = [];
    const agent = createAgentLogger('debug', { node: 'node1' }, { write: (s: string) => void agentOut.push(s) });
    agent.info({ subnet: '10.244.1.0/24' }, 'subnet lease held');
    agent.error({ err: 'boom' }, 'reconcile failed');
    agent.debug('kernel in sync');

    const pluginOut: string[] = [];
    const plugin = createLogger({ write: (s) => pluginOut.push(s) }, 'debug', { cmd: 'ADD' });
    plugin.info('pod attached', { ip: '10.244.1.5' });
    plugin.warn('rollback step failed', { err: 'x' });

    // What main.ts hands the CNI socket server: the plugin's logger, built per call by the same factory.
    const viaAgent: string[] = [];
    const deps = productionDeps({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, { write: (s) => void viaAgent.push(s) })({ logLevel: 'info' } as NetConf, {});
    deps.log.info('pod detached', { hostVeth: 'twl0123456789ab' });

    const all = { agent: lines(agentOut), plugin: lines(pluginOut), 'plugin via agent': lines(viaAgent) };
    assert.deepEqual([all.agent.length, all.plugin.length, all['plugin via agent'].length], [3, 2, 1]);
    for (const [where, ls] of Object.entries(all)) ls.forEach((l, i) => assertSchema(l, `${where} line ${i}`));
    assert.deepEqual(all.agent.map((l) => l.level), ['info', 'error', 'debug']);
    assert.deepEqual(all.plugin.map((l) => l.level), ['info', 'warn']);
    assert.equal(all.agent[0]?.node, 'node1');
    assert.equal(all['plugin via agent'][0]?.containerID, 'c1');
    assert.ok(!('pid' in (all.agent[0] as Line)) && !('hostname' in (all.agent[0] as Line)), 'no pino defaults outside the schema');
  });
});
