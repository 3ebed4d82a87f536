/**
 * The agent's logger: pino, in the one schema every Twill component writes (src/common/json-log.ts
 * writes the same for the plugin): `level` as a label, `time` as ISO 8601 UTC, context, `msg`.
 */
import { pino, stdTimeFunctions, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type AgentLogLevel = 'debug' | 'info' | 'warn' | 'error';

export function agentLogOptions(level: AgentLogLevel, base: Record<string, unknown>): LoggerOptions {
  return { level, base, timestamp: stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } };
}

export function createAgentLogger(level: AgentLogLevel, base: Record<string, unknown>, stream?: DestinationStream): Logger {
  return stream ? pino(agentLogOptions(level, base), stream) : pino(agentLogOptions(level, base));
}
