/**
 * Turns zod issues into one line per problem that names the field, e.g.
 * `Backend.VNI: 0 must be between 1 and 16777215` or `Backend.GBP: unknown field`.
 * Parse with `{ reportInput: true }` so type errors can quote the offending value.
 */
import type * as z from 'zod';

const ARTICLE: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean (true or false)',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly (string | number)[] = []): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path.map((p) => String(p))];
    const name = (extra: string[] = []): string => [...path, ...extra].join('.') || '(root)';
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) out.push(`${name([key])}: unknown field`);
        break;
      case 'invalid_type': {
        const input = (issue as { input?: unknown }).input;
        const want = ARTICLE[issue.expected] ?? issue.expected;
        out.push(input === undefined ? `${name()}: is required` : `${name()}: must be ${want}, got ${describe(input)}`);
        break;
      }
      default:
        out.push(`${name()}: ${issue.message}`);
    }
  }
  return out;
}
