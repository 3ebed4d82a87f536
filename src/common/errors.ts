/**
 * Typed errors. `code` is the CNI error code the plugin returns (spec codes < 100, Twill's own
 * codes >= 100; README lists them). Callers check `code`, never message text.
 */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableLimited: 51,
  // Twill-specific (>= 100)
  RangeExhausted: 100,
  KernelFailure: 101,
  NoSubnet: 102,
  CheckFailed: 103,
  NetnsMissing: 104,
  /** The caller is not root: Twill's CNI verbs (and the agent's socket) serve root only. */
  CallerNotRoot: 110,
  Internal: 199,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export class TwillError extends Error {
  readonly code: ErrorCodeValue;
  readonly details: string | undefined;
  constructor(code: ErrorCodeValue, message: string, opts: { details?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TwillError';
    this.code = code;
    this.details = opts.details;
  }
}

/** A broken invariant inside Twill: never used for bad input. */
export class BugError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BugError';
  }
}

export function isTwillError(e: unknown): e is TwillError {
  return e instanceof TwillError;
}
