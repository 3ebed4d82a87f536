/** Errors of the dataplane adapters, checked by `code`, never by message. */
export type DataplaneErrorCode = 'spawn-failed' | 'read-failed';

export class DataplaneError extends Error {
  readonly code: DataplaneErrorCode;
  constructor(code: DataplaneErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DataplaneError';
    this.code = code;
  }
}
