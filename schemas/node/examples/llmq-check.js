// llmq-check.js — runs the Node client against a live broker and worker and
// prints what happened as one JSON object (tests/integration/
// test_producer_libraries.py reads it): a submit, a stream, a job the worker
// rejects, one refused before sending, a batch, and a cancel.
//   node examples/llmq-check.js --brokers H:P --jobs T --replies T --control T [--batch N]
import { parseArgs } from "node:util";

import { Client, InvalidJob, JobFailed, JobRejected, StreamRestarted } from "../index.js";

const { values: args } = parseArgs({
  options: {
    brokers: { type: "string", default: "127.0.0.1:19092" },
    jobs: { type: "string", default: "llmq.jobs" },
    replies: { type: "string", default: "llmq.replies" },
    control: { type: "string", default: "llmq.control" },
    batch: { type: "string", default: "100" },
  },
});
const TIMEOUT = 120_000;

const steps = {
  async submit(client) {
    return client.submit(
      { prompt: "Once upon a time", max_tokens: 12, seed: 3, meta: { trace: "t-1" } },
      { timeoutMs: TIMEOUT },
    );
  },
  async stream(client) {
    const stream = await client.stream(
      { messages: [{ role: "user", content: "Tell a story." }], max_tokens: 24 },
      { timeoutMs: TIMEOUT },
    );
    let pieces = [];
    let restarts = 0;
    for await (const piece of stream) {
      if (piece instanceof StreamRestarted) {
        restarts++;
        pieces = [];
      } else pieces.push(piece);
    }
    return { pieces: pieces.length, joined: pieces.join(""), restarts, done: stream.done };
  },
  async rejected(client) {
    try {
      await client.submit({ prompt: "x", model: "no-such-model" }, { timeoutMs: TIMEOUT });
    } catch (e) {
      if (!(e instanceof JobFailed)) throw e;
      return {
        code: e.code,
        retryable: e.retryable,
        run: e.run,
        is_rejected: e instanceof JobRejected,
        is_expired: e.name === "JobExpired",
      };
    }
    throw new Error("the job was not rejected");
  },
  async invalid(client) {
    try {
      await client.submit({ prompt: "x", temperature: -1 });
    } catch (e) {
      if (e instanceof InvalidJob) return { code: e.code, field: e.field };
      throw e;
    }
    throw new Error("the job was sent");
  },
  async batch(client) {
    const n = Number(args.batch);
    const t0 = performance.now();
    const jobs = Array.from({ length: n }, (_, i) => ({
      prompt: `Job number ${i}`,
      max_tokens: 4,
      meta: { i },
    }));
    const handles = await client.submitMany(jobs);
    const outcomes = await client.collect(handles, { timeoutMs: TIMEOUT });
    const failed = outcomes.find((o) => o.status !== "done");
    return {
      done: outcomes.filter((o) => o.status === "done").length,
      meta_in_order: outcomes.every((o, i) => o.done?.meta?.i === i),
      first_error: failed ? `${failed.status}: ${failed.error?.message}` : "",
      seconds: (performance.now() - t0) / 1000,
    };
  },
  async cancel(client) {
    await client.cancel("node-cancel-1", { reason: "llmq-check" });
    return { sent: "node-cancel-1" };
  },
};

const client = await Client.connect({
  brokers: args.brokers.split(","),
  jobsTopic: args.jobs,
  replyTopic: args.replies,
  controlTopic: args.control,
});
const out = {};
try {
  for (const [name, step] of Object.entries(steps)) {
    try {
      out[name] = await step(client);
    } catch (e) {
      out[name] = { error: `${e.name}: ${e.message}` };
    }
  }
} finally {
  await client.close();
}
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
