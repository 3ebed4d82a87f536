/**
 * EtcdDatastore: the Datastore seam on etcd v3 (the `etcd3` client, gRPC).
 *
 * - create  = txn(if create_revision(key) == 0 then put)                      -> Conflict otherwise
 * - update  = txn(if key exists and mod_revision(key) == expected then put else get) -> NotFound / Conflict
 * - delete  = txn(if key exists [and mod_revision == expected] then delete else get) -> NotFound / Conflict
 * - txn     = one etcd txn: the conjunction of every op's compare, its writes on success, a range of
 *             every key on failure (to tell which op failed, and whether Conflict or NotFound)
 * - TTL     = one etcd lease granted per put (its id becomes KeyValue.lease); a put without TTL
 *             detaches the key from any lease. The lease a write replaced (or a delete removed) is
 *             revoked, best effort, so renewals do not pile up leases until they expire.
 * - list    = paginated range over the prefix, every page pinned at the first page's revision.
 * - watch   = one raw gRPC watch stream per call (not the client's shared, self-reconnecting
 *             WatchManager): a disconnect ends the iterable with Unavailable and a compacted start
 *             revision with Compacted, so listWatch decides how to resume.
 *
 * Errors: connection failures, deadlines and etcd's own "no leader / timed out" (gRPC UNAVAILABLE)
 * map to Unavailable. A write that fails with Unavailable may still have been applied (the usual
 * etcd ambiguity); callers re-read before retrying a create. The client retries nothing by itself
 * (no fault-handling policies): retrying is the caller's decision.
 */
import { Buffer } from 'node:buffer';
import {
  ClientClosedError,
  Etcd3,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCOutOfRangeError,
  castGrpcError,
  isRecoverableError,
  type ICompare,
  type IKeyValue,
  type IOptions,
  type IRequestOp,
  type ITxnResponse,
  type IWatchResponse,
} from 'etcd3';
import { AsyncQueue } from '../async-queue.js';
import {
  DatastoreError,
  checkTxnOps,
  type Datastore,
  type KeyValue,
  type ListResult,
  type PutOptions,
  type TxnOp,
  type TxnResult,
  type WatchEvent,
  type WatchHooks,
} from '../types.js';

export interface EtcdTls {
  /** CA bundle (PEM) that signed the etcd server certificates. */
  ca: Buffer;
  /** Client certificate and key (PEM) when etcd requires client authentication. */
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdDatastoreOptions {
  /** Client URLs, e.g. `https://10.0.0.1:2379`; the scheme is informative, `tls` decides. */
  endpoints: string[];
  tls?: EtcdTls;
  /** How long a watch may take to be established before it fails Unavailable (default 5000 ms). */
  dialTimeoutMs?: number;
  /** Deadline of each unary call, connecting included (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Keys per page when listing (default 500). */
  pageSize?: number;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = ReturnType<NonNullable<FaultHandling['host']>>;

/** A fault-handling policy that just runs the call (the client's default retries and circuit breakers are off). */
function passThroughPolicy(): Policy {
  const never = () => ({ dispose: () => undefined });
  return {
    onSuccess: never,
    onFailure: never,
    execute: async <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> =>
      fn({ signal: signal ?? new AbortController().signal }),
  } as unknown as Policy;
}

/** The smallest key greater than every key that starts with `prefix` (etcd's prefix range_end). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all keys
}

const COMPACTED_TEXT = 'required revision has been compacted';

/** Maps a client or gRPC error to a DatastoreError when it is one of ours; other errors pass through. */
export function mapEtcdError(e: unknown, what: string): unknown {
  if (e instanceof DatastoreError) return e;
  if (!(e instanceof Error)) return e;
  const err = e.constructor === Error ? castGrpcError(e) : e;
  if (
    isRecoverableError(err) ||
    err instanceof GRPCDeadlineExceededError ||
    err instanceof GRPCCancelledError ||
    err instanceof ClientClosedError ||
    (err as { code?: unknown }).code === 'ECONNREFUSED'
  ) {
    return new DatastoreError('Unavailable', `etcd ${what}: ${err.message}`, { cause: e });
  }
  if (err instanceof GRPCOutOfRangeError && err.message.includes(COMPACTED_TEXT)) {
    return new DatastoreError('Compacted', `etcd ${what}: ${err.message}`, { cause: e });
  }
  return e;
}

/** The first op whose precondition the current keys (the failure branch's ranges) break. */
function txnFailure(ops: readonly TxnOp[], res: ITxnResponse): DatastoreError {
  for (const [i, op] of ops.entries()) {
    const current = res.responses[i]?.response_range?.kvs[0];
    if (op.op === 'create') {
      if (current) return new DatastoreError('Conflict', `key ${op.key} already exists`);
      continue;
    }
    if (!current) return new DatastoreError('NotFound', `key ${op.key} not found`);
    if (op.expectedRevision !== undefined && Number(current.mod_revision) !== op.expectedRevision) {
      return new DatastoreError('Conflict', `key ${op.key} is at revision ${current.mod_revision}, not ${op.expectedRevision}`);
    }
  }
  // Every precondition holds again (the keys changed back between the txn and its reads): still a conflict.
  return new DatastoreError('Conflict', `txn on ${ops.map((o) => o.key).join(', ')}: a precondition failed`);
}

function toKeyValue(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    modRevision: Number(kv.mod_revision),
  };
  if (kv.lease && kv.lease !== '0') out.lease = String(kv.lease);
  return out;
}

export class EtcdDatastore implements Datastore {
  private readonly client: Etcd3;
  private readonly dialTimeoutMs: number;
  private readonly pageSize: number;

  constructor(opts: EtcdDatastoreOptions) {
    if (opts.endpoints.length === 0) throw new RangeError('EtcdDatastore: no endpoints');
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 5000;
    this.pageSize = opts.pageSize ?? 500;
    const requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    // The client connects lazily, on the first call: nothing happens here.
    this.client = new Etcd3({
      hosts: opts.endpoints,
      ...(opts.tls
        ? { credentials: { rootCertificate: opts.tls.ca, privateKey: opts.tls.key, certChain: opts.tls.cert } }
        : {}),
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
      faultHandling: { host: () => passThroughPolicy(), global: passThroughPolicy() },
      grpcOptions: {
        // Reconnect quickly once etcd is back (gRPC's default backoff grows to two minutes).
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
        'grpc.keepalive_permit_without_calls': 1,
      },
    });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call('get', () => this.client.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : undefined;
  }

  async list(prefix: string): Promise<ListResult> {
    for (;;) {
      try {
        return await this.listOnce(prefix);
      } catch (e) {
        // A compaction between two pages: start over at the new revision.
        if (!(e instanceof DatastoreError && e.kind === 'Compacted')) throw e;
      }
    }
  }

  private async listOnce(prefix: string): Promise<ListResult> {
    const start = Buffer.from(prefix);
    const end = prefixEnd(start);
    const items: KeyValue[] = [];
    let from = start;
    let revision = 0;
    for (;;) {
      const res = await this.call('list', () =>
        this.client.kv.range({ key: from, range_end: end, limit: this.pageSize, ...(revision ? { revision } : {}) }),
      );
      if (!revision) revision = Number(res.header.revision);
      items.push(...res.kvs.map(toKeyValue));
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) return { items, revision };
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  async create(key: string, value: string, opts?: PutOptions): Promise<KeyValue> {
    const k = Buffer.from(key);
    return this.withLease(opts, async (lease) => {
      const res = await this.rawTxn('create', {
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: k, value: Buffer.from(value), lease } }],
      });
      if (!res.succeeded) throw new DatastoreError('Conflict', `key ${key} already exists`);
      return this.written(key, value, res, lease);
    });
  }

  async update(key: string, value: string, expectedRevision: number, opts?: PutOptions): Promise<KeyValue> {
    const k = Buffer.from(key);
    return this.withLease(opts, async (lease) => {
      const res = await this.rawTxn('update', {
        compare: [
          { key: k, target: 'Create', result: 'Greater', create_revision: 0 },
          { key: k, target: 'Mod', result: 'Equal', mod_revision: expectedRevision },
        ],
        success: [{ request_put: { key: k, value: Buffer.from(value), lease, prev_kv: true } }],
        failure: [{ request_range: { key: k } }],
      });
      if (!res.succeeded) throw this.casFailure(key, expectedRevision, res);
      const previous = res.responses[0]?.response_put?.prev_kv?.lease;
      if (previous && previous !== '0' && previous !== String(lease)) this.revokeQuietly(previous);
      return this.written(key, value, res, lease);
    });
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    const k = Buffer.from(key);
    const compare: ICompare[] = [{ key: k, target: 'Create', result: 'Greater', create_revision: 0 }];
    if (expectedRevision !== undefined) {
      compare.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: expectedRevision });
    }
    const res = await this.rawTxn('delete', {
      compare,
      success: [{ request_delete_range: { key: k, prev_kv: true } }],
      failure: [{ request_range: { key: k } }],
    });
    if (!res.succeeded) throw this.casFailure(key, expectedRevision, res);
    const lease = res.responses[0]?.response_delete_range?.prev_kvs[0]?.lease;
    if (lease && lease !== '0') this.revokeQuietly(lease);
  }

  async txn(ops: readonly TxnOp[], opts?: PutOptions): Promise<TxnResult> {
    checkTxnOps(ops);
    if (ops.length === 0) {
      const res = await this.call('txn', () => this.client.kv.range({ key: Buffer.from([0]) }));
      return { revision: Number(res.header.revision), results: [] };
    }
    const puts = ops.some((op) => op.op !== 'delete');
    const run = async (lease: string | undefined): Promise<TxnResult> => {
      const compare: ICompare[] = [];
      const success: IRequestOp[] = [];
      for (const op of ops) {
        const k = Buffer.from(op.key);
        if (op.op === 'create') {
          compare.push({ key: k, target: 'Create', result: 'Equal', create_revision: 0 });
          success.push({ request_put: { key: k, value: Buffer.from(op.value), lease } });
          continue;
        }
        compare.push({ key: k, target: 'Create', result: 'Greater', create_revision: 0 });
        if (op.expectedRevision !== undefined) compare.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: op.expectedRevision });
        success.push(
          op.op === 'update'
            ? { request_put: { key: k, value: Buffer.from(op.value), lease, prev_kv: true } }
            : { request_delete_range: { key: k, prev_kv: true } },
        );
      }
      const failure: IRequestOp[] = ops.map((op) => ({ request_range: { key: Buffer.from(op.key) } }));
      const res = await this.rawTxn('txn', { compare, success, failure });
      if (!res.succeeded) throw txnFailure(ops, res);
      const revision = Number(res.header.revision);
      const results = ops.map((op, i): KeyValue | undefined => {
        const r = res.responses[i];
        const previous = op.op === 'update' ? r?.response_put?.prev_kv?.lease : op.op === 'delete' ? r?.response_delete_range?.prev_kvs[0]?.lease : undefined;
        if (previous && previous !== '0' && previous !== String(lease)) this.revokeQuietly(previous);
        if (op.op === 'delete') return undefined;
        const kv: KeyValue = { key: op.key, value: op.value, modRevision: revision };
        if (lease) kv.lease = lease;
        return kv;
      });
      return { revision, results };
    };
    return puts ? this.withLease(opts, run) : run(undefined);
  }

  /** Compacts etcd's history before `revision` (admin and tests; etcd usually auto-compacts). */
  async compact(revision: number): Promise<void> {
    await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
  }

  async *watch(prefix: string, fromRevision: number, signal: AbortSignal, hooks?: WatchHooks): AsyncIterable<WatchEvent> {
    if (signal.aborted) return;
    const stream = await this.call('watch', () => this.client.watchClient.watch());
    const queue = new AsyncQueue<WatchEvent>();
    let created = false;
    const dialTimer = setTimeout(() => {
      if (created) return;
      queue.fail(new DatastoreError('Unavailable', `etcd watch: not established within ${this.dialTimeoutMs} ms`));
    }, this.dialTimeoutMs);
    const onAbort = (): void => queue.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // aborted while the stream was being opened
    // These listeners stay attached after the end: cancel() makes the stream emit a CANCELLED error.
    stream.on('data', (res: IWatchResponse) => {
      if (res.created) {
        created = true;
        clearTimeout(dialTimer);
        if (Number(res.compact_revision) <= 0) hooks?.onEstablished?.();
      }
      if (Number(res.compact_revision) > 0) {
        queue.fail(
          new DatastoreError('Compacted', `etcd watch from ${fromRevision}: compacted up to ${res.compact_revision}`),
        );
        return;
      }
      for (const ev of res.events ?? []) {
        const kv = toKeyValue(ev.kv);
        // A delete event's kv is a tombstone whose mod_revision is the revision of the delete.
        if (ev.type === 'Put') queue.push({ type: 'put', kv, revision: kv.modRevision });
        else queue.push({ type: 'delete', key: kv.key, revision: kv.modRevision });
      }
      if (res.canceled) {
        const reason = res.cancel_reason || 'no reason given';
        queue.fail(new DatastoreError('Unavailable', `etcd watch canceled by the server: ${reason}`));
      }
    });
    stream.on('error', (err: Error) => queue.fail(mapEtcdError(err, 'watch')));
    stream.on('end', () => queue.fail(new DatastoreError('Unavailable', 'etcd watch: stream ended')));
    const start = Buffer.from(prefix);
    stream.write({
      create_request: { key: start, range_end: prefixEnd(start), start_revision: Math.max(0, fromRevision) },
    });
    try {
      yield* queue;
    } finally {
      clearTimeout(dialTimer);
      signal.removeEventListener('abort', onAbort);
      try {
        stream.cancel();
      } catch {
        /* already gone */
      }
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapEtcdError(e, what);
    }
  }

  private rawTxn(
    what: string,
    req: { compare: ICompare[]; success: IRequestOp[]; failure?: IRequestOp[] },
  ): Promise<ITxnResponse> {
    return this.call(what, () => this.client.kv.txn(req));
  }

  private casFailure(key: string, expected: number | undefined, res: ITxnResponse): DatastoreError {
    const current = res.responses[0]?.response_range?.kvs[0];
    if (!current) return new DatastoreError('NotFound', `key ${key} not found`);
    return new DatastoreError('Conflict', `key ${key} is at revision ${current.mod_revision}, not ${expected}`);
  }

  private written(key: string, value: string, res: ITxnResponse, lease: string | undefined): KeyValue {
    const kv: KeyValue = { key, value, modRevision: Number(res.header.revision) };
    if (lease) kv.lease = lease;
    return kv;
  }

  /**
   * Grants a lease for the TTL (if any), runs the write, and revokes the lease when the write surely
   * failed (Conflict, NotFound). After Unavailable the write may have been applied: the lease stays
   * and simply expires with its TTL.
   */
  private async withLease<T>(opts: PutOptions | undefined, write: (lease: string | undefined) => Promise<T>): Promise<T> {
    const ttl = opts?.ttlSeconds;
    if (ttl === undefined) return write(undefined);
    if (!(ttl > 0)) throw new RangeError(`ttlSeconds must be > 0, got ${ttl}`);
    const grant = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: Math.ceil(ttl) }));
    const lease = String(grant.ID);
    try {
      return await write(lease);
    } catch (e) {
      if (e instanceof DatastoreError && (e.kind === 'Conflict' || e.kind === 'NotFound')) this.revokeQuietly(lease);
      throw e;
    }
  }

  private revokeQuietly(lease: string): void {
    this.client.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
  }
}
