// codec.test.js — the Node codec against every vector in schemas/vectors:
// valid jobs encode to the committed bytes, and every file gets index.json's verdict.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { encode } from "@msgpack/msgpack";

import {
  InvalidJob,
  InvalidReply,
  decodeCancel,
  decodeJob,
  decodeReply,
  encodeCancel,
  encodeJob,
  validateJob,
} from "../index.js";

const VECTORS = new URL("../../vectors/", import.meta.url);
const index = JSON.parse(readFileSync(new URL("index.json", VECTORS), "utf8"));
const bytes = (v) => new Uint8Array(readFileSync(new URL(v.file, VECTORS)));
const meaning = (v) => JSON.parse(readFileSync(new URL(v.json, VECTORS), "utf8"));
// The features of index.json's additions this library implements: all of
// them (additions needing others would be skipped and counted, and fail the
// coverage test).
const IMPLEMENTED = new Set([
  "cancel",
  "partial_text",
  "reply_routing",
  "utf8_cut",
  "prompt_bytes_roles",
  "logprobs",
  "lora",
  "chunk_ms",
]);
const skipped = {};
const additions = index.additions.filter((v) => {
  const missing = v.requires.filter((f) => !IMPLEMENTED.has(f));
  for (const f of missing) skipped[f] = (skipped[f] ?? 0) + 1;
  return missing.length === 0;
});
const all = [...index.vectors, ...additions];
const jobs = all.filter((v) => v.kind === "job");
const cancels = all.filter((v) => v.kind === "cancel");
const replies = all.filter((v) => v.kind !== "job" && v.kind !== "cancel");
// Written with a float32 on purpose; this library writes float64.
const FLOAT32 = new Set(["job_ok_float32"]);

test("every vector is covered", (t) => {
  t.diagnostic(`additions: ${additions.length} judged, skipped by missing feature: ${JSON.stringify(skipped)}`);
  assert.deepEqual(skipped, {});
  assert.deepEqual(new Set(Object.keys(index.features)), IMPLEMENTED);
  assert.equal(jobs.length + replies.length + cancels.length, all.length);
  assert.ok(jobs.filter((v) => v.valid).length >= 15);
});

for (const v of jobs.filter((j) => j.valid && !FLOAT32.has(j.name))) {
  test(`encode ${v.name}`, () => {
    // The JSON meaning where there is one; else (bin in meta) the decoded job.
    const job = v.json ? meaning(v) : decodeJob(bytes(v));
    assert.deepEqual(encodeJob(job), bytes(v));
  });
}

test("a float32 job re-encodes with float64", () => {
  const v = jobs.find((j) => j.name === "job_ok_float32");
  const out = encodeJob(decodeJob(bytes(v)));
  assert.notDeepEqual(out, bytes(v));
  assert.ok(Buffer.from(out).includes(Buffer.from([0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0])));
});

test("known fields go in table order whatever the object's order", () => {
  const v = jobs.find((j) => j.name === "job_ok_all_fields");
  const job = meaning(v);
  const reversed = Object.fromEntries(Object.entries(job).reverse());
  assert.deepEqual(encodeJob(reversed), bytes(v));
});

function expectVerdict(v, run) {
  if (v.valid || v.stage === "admit") {
    run();
    return;
  }
  assert.throws(run, (e) => {
    assert.ok(e instanceof InvalidJob, `${e}`);
    assert.equal(e.code, v.expected_code, e.message);
    if (v.field) {
      assert.equal(e.field, v.field);
      assert.ok(e.message.startsWith(v.field), e.message);
    }
    return true;
  });
}

for (const v of jobs) {
  test(`decodeJob ${v.name}`, () => expectVerdict(v, () => decodeJob(bytes(v))));
}

// JSON meanings lose float-ness (1.0 reads as 1 in JS), so the vectors whose
// verdict depends on it can only be judged from their bytes.
const FLOAT_BLIND = new Set(["job_bad_v_float", "job_bad_top_k_float", "job_bad_logprobs_float"]);
for (const v of jobs.filter((j) => j.json && !FLOAT_BLIND.has(j.name))) {
  test(`validateJob ${v.name}`, () => expectVerdict(v, () => validateJob(meaning(v))));
}

for (const v of replies) {
  test(`decodeReply ${v.name}`, () => {
    if (!v.valid) {
      assert.throws(() => decodeReply(bytes(v)), InvalidReply);
      return;
    }
    if (!v.json) {
      // bin tokens: no JSON meaning; the tokens join, as bytes, to the text
      const reply = decodeReply(bytes(v));
      const joined = Buffer.concat(reply.logprobs.map(([token]) => Buffer.from(token)));
      assert.equal(joined.toString("utf8"), reply.text);
      assert.ok(reply.logprobs.every(([token]) => token instanceof Uint8Array));
      return;
    }
    const { v: version, ...expected } = meaning(v);
    assert.equal(version, 1);
    assert.deepEqual(decodeReply(bytes(v)), expected);
  });
}

test("decodeReply ignores unknown fields and rejects what is not a v1 reply", () => {
  const chunk = { v: 1, type: "chunk", id: "j", run: "r", seq: 0, text: "hi" };
  const withExtra = encode({ ...chunk, future: [1, 2] });
  assert.deepEqual(decodeReply(withExtra), {
    type: "chunk",
    id: "j",
    run: "r",
    seq: 0,
    text: "hi",
  });
  for (const bad of [
    { ...chunk, v: 2 },
    { ...chunk, type: "tick" },
    { ...chunk, seq: 0.5 },
    { ...chunk, id: "x".repeat(129) },
    { ...chunk, text: new Uint8Array([1]) },
  ]) {
    assert.throws(() => decodeReply(encode(bad)), InvalidReply);
  }
  assert.throws(() => decodeReply(new Uint8Array([])), InvalidReply);
  assert.throws(() => decodeReply(new Uint8Array([...withExtra, 0])), InvalidReply);
});

test("validateJob refuses what a worker refuses", () => {
  const base = { v: 1, id: "j", prompt: "x" };
  const cases = [
    [{ ...base, temperature: null }, "invalid_field", "temperature"],
    [{ ...base, temperature: Infinity }, "invalid_field", "temperature"],
    [{ ...base, seed: 2n ** 63n }, "invalid_field", "seed"],
    [{ ...base, v: true }, "unsupported_version", "v"],
    [{ ...base, prompt: "x\ud800" }, "invalid_input", "prompt"],
    [{ ...base, reply_to: ".." }, "invalid_field", "reply_to"],
    [{ ...base, json_schema: { a: new Uint8Array(1) } }, "invalid_field", "json_schema"],
    ["not a map", "malformed", null],
  ];
  for (const [job, code, field] of cases) {
    assert.throws(
      () => validateJob(job),
      (e) => e instanceof InvalidJob && e.code === code && e.field === field,
    );
  }
  let meta = {};
  for (let i = 0; i < 30; i++) meta = { d: meta };
  validateJob({ ...base, meta }); // 32 deep with the job map
  assert.throws(
    () => validateJob({ ...base, meta: { d: meta } }),
    (e) => e.code === "malformed",
  );
  const cyclic = { ...base, meta: {} };
  cyclic.meta.self = cyclic.meta;
  assert.throws(
    () => validateJob(cyclic),
    (e) => e.code === "malformed",
  );
});

test("undefined leaves a field out; bigints and large ints keep their integer form", () => {
  const job = {
    v: 1,
    id: "j",
    prompt: "x",
    temperature: undefined,
    seed: -(2n ** 40n),
    deadline_ms: 1700000060000,
  };
  const round = decodeJob(encodeJob(job));
  assert.deepEqual(round, {
    v: 1,
    id: "j",
    prompt: "x",
    seed: -(2 ** 40),
    deadline_ms: 1700000060000,
  });
  assert.equal(Buffer.from(encodeJob(job)).indexOf(0xcb), -1, "no float64 in the bytes");
});

for (const v of cancels) {
  test(`cancel ${v.name}`, () => {
    if (!v.valid) {
      assert.throws(() => decodeCancel(bytes(v)), InvalidReply);
      return;
    }
    const cancel = decodeCancel(bytes(v));
    const { v: _version, type: _type, ...expected } = meaning(v);
    assert.deepEqual(cancel, expected);
    assert.deepEqual(encodeCancel(cancel), bytes(v));
  });
}
