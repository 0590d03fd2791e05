// stream.test.js — how a Stream turns the replies of one job (possibly of
// several runs) into text, without Kafka: chunks are pushed the way the
// client's reply consumer pushes them, then the terminal reply settles.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  JobCancelled,
  JobExpired,
  JobFailed,
  Stream,
  StreamRestarted,
  WorkerFailure,
  encodeCancel,
  jobFailed,
} from "../index.js";

const chunk = (run, seq, text) => ({ type: "chunk", id: "j", run, seq, text });
const done = (run, text) => ({ type: "done", id: "j", run, text });
const error = (code, retryable) => ({ type: "error", id: "j", run: "r", code, message: "m", retryable });

async function feed(replies, signal) {
  const stream = new Stream();
  let settle;
  const result = new Promise((resolve, reject) => (settle = { resolve, reject }));
  stream.attach(result, signal, () => {});
  for (const r of replies) {
    if (r.type === "chunk") stream.push(r);
    else if (r.type === "done") settle.resolve(r);
    else settle.reject(jobFailed(r));
  }
  const items = [];
  try {
    for await (const piece of stream) items.push(piece);
  } catch (e) {
    return { items, error: e, stream };
  }
  return { items, stream };
}

const R = (run, discarded) => new StreamRestarted(run, discarded);

test("runs, reruns and missing chunks follow the run rule", async () => {
  const cases = [
    [[chunk("a", 0, "Once"), chunk("a", 1, " upon"), chunk("a", 2, ""), done("a", "Once upon")], ["Once", " upon"]],
    [[chunk("a", 1, "B"), chunk("a", 0, "A"), done("a", "AB")], ["A", "B"]],
    [
      [chunk("a", 0, "Hel"), chunk("a", 1, "lo"), chunk("b", 0, "Hi"), chunk("a", 2, " late"), chunk("b", 1, " there"), done("b", "Hi there")],
      ["Hel", "lo", R("b", "Hello"), "Hi", " there"],
    ],
    [[chunk("a", 0, "x"), chunk("b", 0, "y"), chunk("a", 1, "z"), done("a", "xz")], ["x", R("b", "x"), "y", R("a", "y"), "x", "z"]],
    [[done("a", "all at once")], ["all at once"]],
    [[chunk("a", 0, "ab"), done("a", "abcd")], ["ab", "cd"]],
    [[chunk("a", 0, "ab"), chunk("a", 2, "zz"), done("a", "xyz")], ["ab", R("a", "ab"), "xyz"]],
  ];
  for (const [replies, want] of cases) {
    const { items, error: e, stream } = await feed(replies);
    assert.equal(e, undefined);
    assert.deepEqual(items, want);
    assert.equal(stream.done.text, replies.at(-1).text);
  }
});

test("an error reply throws its class after the text so far", async () => {
  for (const [code, retryable, Class] of [
    ["expired", false, JobExpired],
    ["backend_failed", true, WorkerFailure],
    ["cancelled", false, JobCancelled],
    ["new_code", false, JobFailed],
  ]) {
    const { items, error: e } = await feed([chunk("r", 0, "partial"), error(code, retryable)]);
    assert.deepEqual(items, ["partial"]);
    assert.equal(e.constructor, Class);
    assert.deepEqual([e.code, e.retryable, e.run], [code, retryable, "r"]);
  }
});

test("silence ends with the signal", async () => {
  const ac = new AbortController(); // AbortSignal.timeout's timer would not keep the test alive
  setTimeout(() => ac.abort(new DOMException("no reply", "TimeoutError")), 50);
  const { items, error: e } = await feed([], ac.signal);
  assert.deepEqual(items, []);
  assert.equal(e.name, "TimeoutError");
});

test("cancel messages", () => {
  assert.deepEqual(
    Buffer.from(encodeCancel({ id: "job-1", reason: "user" })),
    Buffer.from("\x84\xa1v\x01\xa4type\xa6cancel\xa2id\xa5job-1\xa6reason\xa4user", "latin1"),
  );
  assert.throws(() => encodeCancel({ id: "" }), (e) => e.code === "invalid_id");
});
