// A ledger in another process: one writer (the process that opened the ledger) answers requests
// that other processes send over a message channel, so their records join its one hash chain.
// A record is acknowledged only once the writer made it durable; a lost channel fails closed.

import { isErrorCode, MeshcaError } from '../errors/index.ts';
import type { AppendResult, LedgerEvent } from './events.ts';
import type { Ledger, LedgerQuery, LedgerRecord, PruneResult, VerifyReport } from './ledger.ts';
import type { AnchorCheck } from './verify.ts';

/** What a remote ledger asks its writer for. `append` carries every record of one turn of the event loop. */
export type LedgerRequest =
  | { readonly op: 'append'; readonly events: readonly LedgerEvent[] }
  | { readonly op: 'query'; readonly query: LedgerQuery }
  | { readonly op: 'verify' }
  | { readonly op: 'newestCheckpointTimeMs' }
  | { readonly op: 'prune'; readonly beforeMs: number };

/** A failure as it crosses the channel: the MeshcaError code and message (no cause, no stack). */
export interface RemoteFailure {
  readonly ok: false;
  readonly code: string;
  readonly message: string;
}

export type AppendOutcome = ({ readonly ok: true } & AppendResult) | RemoteFailure;

export type LedgerReply =
  | { readonly ok: true; readonly op: 'append'; readonly outcomes: readonly AppendOutcome[]; readonly health?: string }
  | { readonly ok: true; readonly op: 'query'; readonly records: readonly LedgerRecord[] }
  | { readonly ok: true; readonly op: 'verify'; readonly report: VerifyReport }
  | { readonly ok: true; readonly op: 'newestCheckpointTimeMs'; readonly timeMs?: number }
  | { readonly ok: true; readonly op: 'prune'; readonly result: PruneResult }
  | RemoteFailure;

function failure(err: unknown): RemoteFailure {
  if (err instanceof MeshcaError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: 'LEDGER_UNAVAILABLE', message: `the ledger writer failed: ${err instanceof Error ? err.message : String(err)}` };
}

/** The writer's error as it threw it; a code this process does not know is LEDGER_UNAVAILABLE (fail closed). */
function errorOf(f: RemoteFailure): MeshcaError {
  return new MeshcaError(isErrorCode(f.code) ? f.code : 'LEDGER_UNAVAILABLE', f.message);
}

/**
 * The writer's side: answers one request against the ledger it holds. The appends of a request
 * are submitted together, so they join one group commit, and each resolves or fails on its own.
 */
export async function answerLedgerRequest(ledger: Ledger, request: LedgerRequest): Promise<LedgerReply> {
  try {
    switch (request.op) {
      case 'append': {
        const settled = await Promise.allSettled(request.events.map((e) => ledger.append(e)));
        const outcomes = settled.map((s): AppendOutcome => (s.status === 'fulfilled' ? { ok: true, ...s.value } : failure(s.reason)));
        const health = ledger.health();
        return { ok: true, op: 'append', outcomes, ...(health !== undefined ? { health } : {}) };
      }
      case 'query':
        return { ok: true, op: 'query', records: await ledger.query(request.query) };
      case 'verify':
        return { ok: true, op: 'verify', report: await ledger.verify() };
      case 'newestCheckpointTimeMs': {
        const timeMs = await ledger.newestCheckpointTimeMs();
        return { ok: true, op: 'newestCheckpointTimeMs', ...(timeMs !== undefined ? { timeMs } : {}) };
      }
      case 'prune':
        return { ok: true, op: 'prune', result: await ledger.prune(request.beforeMs) };
    }
  } catch (err) {
    return failure(err);
  }
}

/** How a remote ledger reaches its writer; `send` returns false when the channel is gone. */
export interface LedgerChannel {
  send(id: number, request: LedgerRequest): boolean;
}

interface Waiting {
  resolve(reply: LedgerReply): void;
  reject(err: MeshcaError): void;
}

/**
 * The Ledger a process without the database uses: every call goes to the writer. Appends made in
 * one turn of the event loop travel as one request (the writer's group commit keeps batching them).
 */
export class RemoteLedger implements Ledger {
  readonly #channel: LedgerChannel;
  readonly #where: string;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #batch: { event: LedgerEvent; resolve(r: AppendResult): void; reject(err: unknown): void }[] = [];
  #lost: string | undefined;
  #writerHealth: string | undefined;

  /** `where` names the writer in messages (e.g. "the primary process"). */
  constructor(channel: LedgerChannel, where: string) {
    this.#channel = channel;
    this.#where = where;
  }

  /** The writer is gone: everything waiting fails, and so does everything after. */
  lost(reason: string): void {
    this.#lost ??= `the ledger's writer (${this.#where}) is unavailable: ${reason}`;
    const err = new MeshcaError('LEDGER_UNAVAILABLE', this.#lost);
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
    for (const b of this.#batch.splice(0)) b.reject(err);
  }

  /** Hands a reply from the writer to the call waiting for it; unknown ids are ignored. */
  receive(id: number, reply: LedgerReply): void {
    const waiting = this.#waiting.get(id);
    if (!waiting) return;
    this.#waiting.delete(id);
    waiting.resolve(reply);
  }

  #request(request: LedgerRequest): Promise<LedgerReply> {
    if (this.#lost) return Promise.reject(new MeshcaError('LEDGER_UNAVAILABLE', this.#lost));
    const id = this.#nextId++;
    return new Promise<LedgerReply>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      if (!this.#channel.send(id, request)) this.lost('its channel is closed');
    });
  }

  async #call<O extends LedgerRequest['op']>(request: LedgerRequest & { op: O }): Promise<Extract<LedgerReply, { ok: true; op: O }>> {
    const reply = await this.#request(request);
    if (!reply.ok) throw errorOf(reply);
    if (reply.op !== request.op) throw new MeshcaError('LEDGER_UNAVAILABLE', `the ledger's writer answered ${reply.op} to ${request.op}`);
    return reply as Extract<LedgerReply, { ok: true; op: O }>;
  }

  append(event: LedgerEvent): Promise<AppendResult> {
    if (this.#lost) return Promise.reject(new MeshcaError('LEDGER_UNAVAILABLE', this.#lost));
    return new Promise<AppendResult>((resolve, reject) => {
      this.#batch.push({ event, resolve, reject });
      // Every append of this turn goes in one message.
      if (this.#batch.length === 1) setImmediate(() => this.#sendBatch());
    });
  }

  #sendBatch(): void {
    const batch = this.#batch.splice(0);
    if (batch.length === 0) return;
    this.#call({ op: 'append', events: batch.map((b) => b.event) }).then(
      (reply) => {
        this.#writerHealth = reply.health;
        batch.forEach((b, i) => {
          const outcome = reply.outcomes[i];
          if (!outcome) b.reject(new MeshcaError('LEDGER_UNAVAILABLE', `the ledger's writer (${this.#where}) answered ${reply.outcomes.length} of ${batch.length} records`));
          else if (outcome.ok) b.resolve({ seq: outcome.seq, hash: outcome.hash });
          else b.reject(errorOf(outcome));
        });
      },
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  }

  async query(q: LedgerQuery): Promise<LedgerRecord[]> {
    return [...(await this.#call({ op: 'query', query: q })).records];
  }

  /** Verifies against the writer's own head anchor (a remote caller cannot name another). */
  async verify(anchor?: AnchorCheck): Promise<VerifyReport> {
    if (anchor !== undefined) throw new MeshcaError('BAD_REQUEST', 'a remote ledger verifies against its writer’s own head anchor only');
    return (await this.#call({ op: 'verify' })).report;
  }

  /** Why the writer's ledger cannot record, as the writer last said (with each append's answer, and whenever it is asked for readiness). */
  health(): string | undefined {
    return this.#lost ?? this.#writerHealth;
  }

  /** The writer's ledger health, told outside an append (e.g. with a readiness question). */
  noteWriterHealth(health: string | undefined): void {
    this.#writerHealth = health;
  }

  async newestCheckpointTimeMs(): Promise<number | undefined> {
    return (await this.#call({ op: 'newestCheckpointTimeMs' })).timeMs;
  }

  async prune(beforeMs: number): Promise<PruneResult> {
    return (await this.#call({ op: 'prune', beforeMs })).result;
  }

  /** The writer owns the ledger and closes it; this only stops using it. */
  async close(): Promise<void> {
    this.lost('closed');
  }
}
