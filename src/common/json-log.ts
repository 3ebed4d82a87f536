/**
 * A minimal JSON-lines logger for the CNI plugin, whose start-up budget has no room for pino
 * (the agent uses pino). Never writes to stdout: stdout carries the CNI result.
 *
 * One schema for every Twill log line, this writer's and the agent's pino (src/agent/log.ts):
 * `{"level":"info","time":"2026-11-25T10:00:00.000Z", ...context, "msg":"..."}`: the level as a
 * label, the time as ISO 8601 UTC, context fields, then the message.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(sink: LogSink, level: Level, base: Record<string, unknown> = {}, now: () => Date = () => new Date()): Logger {
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[lvl] < RANK[level]) return;
    const time = now().toISOString();
    const record: Record<string, unknown> = { level: lvl, time, ...base, ...fields, msg };
    // level and time lead the line (pino's order) and, like msg, are never overridden by a field of the same name.
    record.level = lvl;
    record.time = time;
    sink.write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(sink, level, { ...base, ...fields }, now),
  };
}

export const nullLogger: Logger = createLogger({ write: () => undefined }, 'error');
