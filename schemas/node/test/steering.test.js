// steering.test.js — the steering job fields (logprobs, lora, chunk_ms),
// logprobs in replies, partialText on JobFailed, lane selection, and how
// submitMany slices its jobs, without Kafka.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { decode, encode } from "@msgpack/msgpack";

import { InvalidJob, JobCancelled, decodeReply, encodeJob, jobFailed, validateJob } from "../index.js";
import { JOB_BATCH_BYTES, laneTopic, slicesBySize } from "../lib/client.js";

const VECTORS = new URL("../../vectors/", import.meta.url);
const reply = (name) => decodeReply(new Uint8Array(readFileSync(new URL(`${name}.msgpack`, VECTORS))));

test("steering fields go after meta, in table order", () => {
  const job = {
    priority: 3,
    chunk_ms: 0,
    lora: [{ name: "style", scale: 0.5 }, { name: "tiny-lora" }],
    logprobs: 5,
    meta: { k: "v" },
    prompt: "a",
    id: "j-1",
    v: 1,
  };
  const back = decode(encodeJob(job));
  assert.deepEqual(Object.keys(back), [
    "v",
    "id",
    "prompt",
    "meta",
    "logprobs",
    "lora",
    "chunk_ms",
    "priority",
  ]);
  assert.deepEqual(back.lora, job.lora);
});

test("steering fields are validated before sending", () => {
  const base = { v: 1, id: "j", prompt: "x" };
  for (const [job, field] of [
    [{ ...base, logprobs: 21 }, "logprobs"],
    [{ ...base, logprobs: 2.5 }, "logprobs"],
    [{ ...base, chunk_ms: -1 }, "chunk_ms"],
    [{ ...base, chunk_ms: true }, "chunk_ms"],
    [{ ...base, lora: [{ name: "" }] }, "lora"],
    [{ ...base, lora: [{ name: "a" }, { name: "a", scale: 2 }] }, "lora"],
    [{ ...base, lora: [{ name: "a", scale: NaN }] }, "lora"],
    [{ ...base, lora: [{ name: "a", scale: null }] }, "lora"],
    [{ ...base, lora: Array.from({ length: 17 }, (_, i) => ({ name: `a${i}` })) }, "lora"],
  ]) {
    assert.throws(
      () => validateJob(job),
      (e) => e instanceof InvalidJob && e.code === "invalid_field" && e.field === field,
      JSON.stringify(job),
    );
  }
  validateJob({ ...base, lora: [] }); // the base model
  validateJob({ ...base, lora: [{ name: "not-loaded", extra: 1 }] }); // names: the worker's to judge
});

test("the chunks' logprobs join to the done's", () => {
  const a = reply("chunk_logprobs");
  const b = reply("chunk_logprobs_last");
  const d = reply("done_logprobs");
  assert.deepEqual([...a.logprobs, ...b.logprobs], d.logprobs);
  const sum = (lps) => lps.reduce((s, [, lp]) => s + lp, 0);
  assert.equal(sum(a.logprobs) + sum(b.logprobs), sum(d.logprobs));
  const [token, logprob, top] = d.logprobs[0];
  assert.equal(typeof token, "string");
  assert.ok(logprob <= 0 && top.length > 0);
  assert.equal(reply("done_logprobs_zero_probability").logprobs[0][2][1][1], -3.4028234663852886e38);
  const chunk = { v: 1, type: "chunk", id: "j", run: "r", seq: 0, text: "" };
  assert.deepEqual(decodeReply(encode({ ...chunk, logprobs: [] })).logprobs, []);
  assert.equal(decodeReply(encode(chunk)).logprobs, undefined);
  assert.equal("logprobs" in decodeReply(encode(chunk)), false);
});

test("a cancelled job's failure carries its partial text", () => {
  const e = jobFailed({
    type: "error",
    id: "j",
    run: "w1-1",
    code: "cancelled",
    message: "cancelled: enough",
    retryable: false,
    worker: "w",
    partial_text: "Once",
  });
  assert.ok(e instanceof JobCancelled);
  assert.equal(e.partialText, "Once");
});

test("a lane names its jobs topic", () => {
  const opts = {
    jobsTopic: "llmq.jobs",
    lanes: new Map([
      ["urgent", "llmq.jobs.urgent"],
      ["batch", "llmq.jobs.batch"],
    ]),
  };
  assert.equal(laneTopic(opts, undefined), "llmq.jobs");
  assert.equal(laneTopic(opts, "urgent"), "llmq.jobs.urgent");
  assert.throws(() => laneTopic(opts, "vip"), /^RangeError: lane vip: not one of this client's lanes \[batch,urgent\]/);
});

test("submitMany's jobs go out in slices of at most 64 KiB, in order", () => {
  const job = (id, size) => ({ id, value: Buffer.alloc(size) });
  const jobs = [job("a", 40_000), job("b", 20_000), job("c", 10_000), job("d", 100_000), job("e", 1)];
  const slices = slicesBySize(jobs, JOB_BATCH_BYTES);
  assert.equal(JOB_BATCH_BYTES, 65536);
  assert.deepEqual(slices.map((s) => s.map((j) => j.id)), [["a", "b"], ["c"], ["d"], ["e"]]);
  assert.deepEqual(slicesBySize([], JOB_BATCH_BYTES), []);
  const many = Array.from({ length: 1000 }, (_, i) => job(`j${i}`, 1000));
  const cut = slicesBySize(many, JOB_BATCH_BYTES);
  assert.deepEqual(cut.flat().map((j) => j.id), many.map((j) => j.id));
  assert.ok(cut.every((s) => s.reduce((n, j) => n + j.value.length, 0) <= JOB_BATCH_BYTES));
  assert.equal(cut.length, Math.ceil(1000 / 65));
});
