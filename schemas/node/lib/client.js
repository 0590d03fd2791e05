// client.js — submit jobs to llmq workers over Kafka and wait for their
// replies (wire contract v1, schemas/spec.md), on @platformatic/kafka.
//
// One Client holds one producer (jobs keyed by job id, acknowledged by all
// in-sync replicas before submit's first step ends; cancels on the control
// topic) and one reply consumer: it reads every partition of the reply topic
// from where it ended when the client connected, in a consumer group of its
// own (a fresh random id; nothing is committed), decodes only the replies
// whose Kafka key is a job this client waits for, and routes them. Chunks of
// jobs that are not streamed are skipped by their `llmq-type` header.
//
// At-least-once delivery is handled as the spec says: the first terminal
// reply (done or error) of a job decides it; later ones are ignored.
import { randomBytes, randomUUID } from "node:crypto";

import { Consumer, ProduceAcks, Producer } from "@platformatic/kafka";

import { decodeReply, encodeCancel, encodeJob } from "./codec.js";
import { ClientClosed, DeliveryFailed, jobFailed } from "./errors.js";
import { Stream } from "./stream.js";

/** One job this client waits for: its promise, and its stream when streamed. */
class Tracker {
  constructor(id, stream) {
    this.id = id;
    this.stream = stream;
    this.settled = false;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => {}); // a failure is the caller's to see, not unhandled
  }

  settle(error, done) {
    if (this.settled) return;
    this.settled = true;
    if (error) this.reject(error);
    else this.resolve(done);
  }
}

export class Client {
  /** Connect and position the reply consumer at the end of the reply topic.
   * Options: brokers (array of "host:port"), jobsTopic ("llmq.jobs"),
   * replyTopic ("llmq.replies", must exist), controlTopic ("llmq.control"),
   * lanes (priority lanes: lane name -> jobs topic, e.g. {urgent:
   * "llmq.jobs.urgent"}; submit(job, {lane: "urgent"}) sends there), kafka
   * (more @platformatic/kafka options for both clients: tls, sasl, ...). */
  static async connect(options) {
    const client = new Client(options);
    try {
      await client.#start();
    } catch (e) {
      await client.#shutdown();
      throw e;
    }
    return client;
  }

  #opts;
  #producer;
  #consumer;
  #replies = null;
  #pending = new Map();
  #closed = false;

  constructor({
    brokers,
    jobsTopic = "llmq.jobs",
    replyTopic = "llmq.replies",
    controlTopic = "llmq.control",
    lanes = {},
    kafka = {},
  }) {
    this.#opts = { jobsTopic, replyTopic, controlTopic, lanes: new Map(lanes instanceof Map ? lanes : Object.entries(lanes)) };
    const base = { bootstrapBrokers: brokers, clientId: "llmq-client", ...kafka };
    this.#producer = new Producer({ ...base, acks: ProduceAcks.ALL, idempotent: true });
    this.#consumer = new Consumer({ ...base, groupId: `llmq-client-${randomUUID()}` });
  }

  get replyTopic() {
    return this.#opts.replyTopic;
  }

  async #start() {
    const topic = this.#opts.replyTopic;
    let ends;
    try {
      ends = (await this.#consumer.listOffsets({ topics: [topic] })).get(topic);
    } catch (e) {
      throw new Error(`reply topic ${topic}: ${e.message}`, { cause: e });
    }
    if (!ends?.length) throw new Error(`reply topic ${topic}: not found`);
    this.#replies = await this.#consumer.consume({
      topics: [topic],
      mode: "manual",
      offsets: ends.map((offset, partition) => ({ topic, partition, offset })),
      autocommit: false,
      maxWaitTime: 500,
    });
    this.#replies.on("data", (message) => this.#route(message));
    this.#replies.on("error", (e) => console.warn(`llmq: reply topic ${topic}: ${e.message}`));
  }

  // ---- submitting ------------------------------------------------------------

  /** Send one job and wait for its terminal reply: the done reply, or a
   * rejection with JobFailed (JobRejected, JobExpired, WorkerFailure,
   * JobCancelled), InvalidJob (refused before sending), DeliveryFailed, or the
   * abort reason of `signal` / a TimeoutError after `timeoutMs`. Without an
   * id the job gets a fresh one; with timeoutMs and no deadline_ms it gets
   * deadline_ms = now + timeoutMs, so the worker stops when the caller does.
   * `lane` (a name in the client's lanes) picks the jobs topic; an unknown
   * lane throws a RangeError before anything is sent. */
  async submit(job, { signal, timeoutMs, lane } = {}) {
    const [handle] = await this.#send([job], { timeoutMs, stream: false, lane });
    return this.#wait(handle, withTimeout(signal, timeoutMs));
  }

  /** Send many jobs at once; resolves, once the broker answered for all of
   * them, to handles {id, result} (result: the job's promise, as submit's).
   * All are validated before any is sent (InvalidJob names the index);
   * `lane` sends them all to that lane's jobs topic, as submit's. */
  async submitMany(jobs, { timeoutMs, lane } = {}) {
    return this.#send(jobs, { timeoutMs, stream: false, lane });
  }

  /** Wait for handles (from submitMany) within `timeoutMs` in all and return
   * one outcome per handle, in order: {id, status: "done" | "failed" |
   * "timeout", done, error}. Never rejects for a job's failure. */
  async collect(handles, { timeoutMs, signal } = {}) {
    const stop = withTimeout(signal, timeoutMs);
    const outcomes = [];
    for (const h of handles) {
      try {
        outcomes.push({ id: h.id, status: "done", done: await this.#wait(h, stop) });
      } catch (error) {
        const timeout = stop?.aborted && error === stop.reason;
        outcomes.push({ id: h.id, status: timeout ? "timeout" : "failed", error });
      }
    }
    return outcomes;
  }

  /** Send one job with stream = true and return a Stream: an async iterator
   * of text pieces and StreamRestarted markers (see stream.js for the run
   * rule); after it ends, `stream.done` holds the done reply. `lane` as submit's. */
  async stream(job, { signal, timeoutMs, lane } = {}) {
    if (job.stream === false) throw new TypeError("stream(): the job must have stream: true");
    const stream = new Stream();
    const [handle] = await this.#send([{ ...job, stream: true }], { timeoutMs, stream, lane });
    stream.attach(handle.result, withTimeout(signal, timeoutMs), () => this.#forget(handle.id));
    return stream;
  }

  /** Ask the workers to stop job `id` (a cancel message on the control topic,
   * keyed by the id); `run` limits it to one run. Resolves once the broker has
   * it. A job this client waits for then ends with the worker's error reply. */
  async cancel(id, { run, reason } = {}) {
    const value = Buffer.from(encodeCancel({ id, run, reason }));
    const headers = new Map([
      [Buffer.from("llmq-type"), Buffer.from("cancel")],
      [Buffer.from("llmq-id"), Buffer.from(id)],
    ]);
    await this.#producer.send({
      messages: [{ topic: this.#opts.controlTopic, key: Buffer.from(id), value, headers }],
    });
  }

  /** Stop reading replies, close both clients, and fail the jobs still
   * waiting with ClientClosed. Safe to call twice. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await this.#shutdown();
    for (const t of this.#pending.values()) {
      t.settle(new ClientClosed(`job ${t.id}: the client was closed`));
    }
    this.#pending.clear();
  }

  async #shutdown() {
    await this.#replies?.close().catch(() => {});
    await this.#consumer.close(true).catch(() => {});
    await this.#producer.close().catch(() => {});
  }

  // ---- internals ---------------------------------------------------------------

  #prepare(job, timeoutMs) {
    const full = { ...job, v: 1, id: job.id ?? randomBytes(16).toString("hex") };
    full.reply_to ??= this.#opts.replyTopic;
    if (full.reply_to !== this.#opts.replyTopic) {
      throw new TypeError(
        `reply_to ${full.reply_to}: this client reads its replies from ${this.#opts.replyTopic}`,
      );
    }
    if (timeoutMs !== undefined && full.deadline_ms === undefined) {
      full.deadline_ms = Date.now() + timeoutMs;
    }
    return { id: full.id, value: Buffer.from(encodeJob(full)) };
  }

  async #send(jobs, { timeoutMs, stream, lane }) {
    const topic = laneTopic(this.#opts, lane);
    const prepared = jobs.map((job, i) => {
      try {
        return this.#prepare(job, timeoutMs);
      } catch (e) {
        if (jobs.length > 1 && e.code) e.message = `jobs[${i}]: ${e.message}`;
        throw e;
      }
    });
    if (this.#closed) throw new ClientClosed("the client is closed");
    const ids = new Set(prepared.map((p) => p.id));
    if (ids.size !== prepared.length || prepared.some((p) => this.#pending.has(p.id))) {
      throw new Error("a job id is already waiting for its reply");
    }
    const trackers = prepared.map((p) => new Tracker(p.id, stream || null));
    for (const t of trackers) this.#pending.set(t.id, t);
    // One send per slice of at most JOB_BATCH_BYTES: one send is one record
    // batch per partition, and a worker holds a fetched batch whole until its
    // last job is read (FINDINGS, "The worker's cost per job"); a batch over
    // the broker's message.max.bytes would be refused whole. In order, so a
    // partition's jobs keep the order they were given in.
    let sent = 0;
    try {
      for (const slice of slicesBySize(prepared, JOB_BATCH_BYTES)) {
        await this.#producer.send({
          messages: slice.map(({ id, value }) => ({ topic, key: Buffer.from(id), value })),
        });
        sent += slice.length;
      }
    } catch (e) {
      for (const t of trackers.slice(sent)) {
        this.#forget(t.id);
        t.settle(new DeliveryFailed(t.id, e.message));
      }
      if (trackers.length === 1) throw new DeliveryFailed(trackers[0].id, e.message);
    }
    return trackers.map((t) => ({ id: t.id, result: t.promise }));
  }

  async #wait(handle, signal) {
    if (!signal) return handle.result;
    if (signal.aborted) throw signal.reason;
    let onAbort;
    const aborted = new Promise((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([handle.result, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#forget(handle.id);
    }
  }

  #forget(id) {
    this.#pending.delete(id);
  }

  #route(message) {
    const id = message.key?.toString("utf8") ?? "";
    const t = this.#pending.get(id);
    if (!t) return;
    if (!t.stream && headerOf(message, "llmq-type") === "chunk") return;
    let reply;
    try {
      reply = decodeReply(message.value);
    } catch (e) {
      console.warn(`llmq: job ${id}: skipping a reply that is not v1: ${e.message}`);
      return;
    }
    if (reply.id !== id) {
      console.warn(`llmq: job ${id}: skipping a reply keyed by it but for job ${reply.id}`);
    } else if (reply.type === "chunk") {
      t.stream?.push(reply);
    } else if (reply.type === "done" || reply.type === "error") {
      this.#forget(id);
      t.settle(reply.type === "error" ? jobFailed(reply) : null, reply);
    }
  }
}

/** The most job bytes (encoded values) that one send carries: 64 KiB, as the
 * Python client's and the CLI's producers batch jobs (librdkafka's default is
 * 1 MB). */
export const JOB_BATCH_BYTES = 64 * 1024;

/** `items` ({value: Buffer}) cut, in order, into slices whose values add up
 * to at most `maxBytes`; an item larger than that is a slice of its own. */
export function slicesBySize(items, maxBytes) {
  const slices = [];
  let slice = [];
  let bytes = 0;
  for (const item of items) {
    if (slice.length > 0 && bytes + item.value.length > maxBytes) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(item);
    bytes += item.value.length;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/** The jobs topic of `lane` (undefined: the client's jobs topic); RangeError
 * for a lane the client does not know. */
export function laneTopic({ jobsTopic, lanes }, lane) {
  if (lane === undefined) return jobsTopic;
  if (!lanes.has(lane)) {
    throw new RangeError(`lane ${lane}: not one of this client's lanes [${[...lanes.keys()].sort()}]`);
  }
  return lanes.get(lane);
}

function headerOf(message, name) {
  for (const [k, v] of message.headers ?? []) {
    if (k.toString() === name) return v.toString();
  }
  return undefined;
}

/** An AbortSignal that fires on `signal` or after timeoutMs (undefined when neither). */
function withTimeout(signal, timeoutMs) {
  const signals = [signal, timeoutMs !== undefined && AbortSignal.timeout(timeoutMs)];
  const given = signals.filter(Boolean);
  return given.length > 1 ? AbortSignal.any(given) : given[0];
}
