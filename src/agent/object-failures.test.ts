import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ApplyReport } from '../dataplane/reconciler.js';
import { AgentMetrics } from './health.js';
import { recordObjectFailures } from './object-failures.js';

const bad = 'ip: neigh replace 10.244.2.0 lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent';
const report = (errors: ApplyReport['errors']): ApplyReport => ({ changes: 0, commands: [], errors, pending: [], converged: errors.length === 0 });

describe('recordObjectFailures', () => {
  it('logs one line naming each failed object and sets the per-kind metrics; a fixed object clears its gauge', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const metrics = new AgentMetrics();
    recordObjectFailures(report([{ code: 'command-failed', message: `${bad}: RTNETLINK answers: Invalid argument`, line: bad, kind: 'neigh' }, { code: 'invalid-spec', message: 'x' }]), metrics, log);
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0] ?? '{}') as { kind: string; object: string; msg: string };
    assert.deepEqual([entry.kind, entry.object], ['neigh', bad]);
    assert.match(entry.msg, /neigh replace 10\.244\.2\.0 .*Invalid argument/);
    let text = await metrics.registry.metrics();
    assert.match(text, /twill_kernel_objects_failing\{kind="neigh"\} 1/);
    assert.match(text, /twill_kernel_objects_failing\{kind="route"\} 0/);
    assert.match(text, /twill_kernel_object_failures_total\{kind="neigh"\} 1/);
    recordObjectFailures(report([]), metrics, log);
    text = await metrics.registry.metrics();
    assert.match(text, /twill_kernel_objects_failing\{kind="neigh"\} 0/);
    assert.match(text, /twill_kernel_object_failures_total\{kind="neigh"\} 1/);
  });
});
