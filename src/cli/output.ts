/**
 * `-o, --output text|json|yaml`, the same option and rendering for every command that prints data.
 * Anything else is a usage error (exit 2), reported by commander before the command runs.
 */
import { Option } from 'commander';
import { stringify } from 'yaml';

export const OUTPUT_FORMATS = ['text', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('text');
}

/** The lines to print: `text()` for text, else `data` as JSON (2-space) or YAML. */
export function render(format: OutputFormat, data: unknown, text: () => string[]): string[] {
  if (format === 'json') return [JSON.stringify(data, null, 2)];
  if (format === 'yaml') return [stringify(data).trimEnd()];
  return text();
}

/** Commander error codes that mean "the command line is wrong": exit status 2, like getopt tools. */
export const USAGE_ERRORS = new Set([
  'commander.invalidArgument',
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.excessArguments',
  'commander.conflictingOption',
]);

export function exitStatusFor(err: { code: string; exitCode: number }): number {
  return USAGE_ERRORS.has(err.code) ? 2 : err.exitCode;
}
