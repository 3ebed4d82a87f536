/**
 * A push-to-pull bridge: producers (store callbacks, gRPC stream events) `push` items, `fail` with an
 * error or `end`; one consumer drains it as an async iterable. Items pushed before a failure are
 * delivered first, then the error is thrown. Unbounded: watch consumers are expected to keep up.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: { value: unknown } | undefined;
  private wake: (() => void) | undefined;

  push(item: T): void {
    if (this.done || this.error) return;
    this.items.push(item);
    this.notify();
  }

  /** Ends the iteration with `error` once the items already pushed were consumed. First call wins. */
  fail(error: unknown): void {
    if (this.done || this.error) return;
    this.error = { value: error };
    this.notify();
  }

  /** Ends the iteration normally once the items already pushed were consumed. */
  end(): void {
    if (this.error) return;
    this.done = true;
    this.notify();
  }

  /** Ends the iteration now, dropping items not yet consumed (the consumer's signal aborted). */
  abort(): void {
    this.items.length = 0;
    this.error = undefined;
    this.done = true;
    this.notify();
  }

  /** True once `fail` or `end` was called. */
  get closed(): boolean {
    return this.done || this.error !== undefined;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift() as T;
        continue;
      }
      if (this.error) throw this.error.value;
      if (this.done) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}
