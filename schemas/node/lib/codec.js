// codec.js — the llmq wire contract v1 (schemas/spec.md) for Node.js; the
// twin of the Python library's llmq.codec, with the same rules and messages.
//
// encodeJob(job) validates a job object and returns its msgpack bytes, fields
// in the order of the spec's field table, then unknown fields: the bytes of
// schemas/vectors. validateJob / decodeJob give the verdict a worker reaches
// while decoding (an InvalidJob with the worker's code and field). decodeReply
// reads a chunk, done, error or heartbeat, checking each field's type.
//
// Numbers: a JS number that is a safe integer is sent as a msgpack int, any
// other number as a float64 (so temperature: 1 is the int 1, which the
// contract accepts for every number field); use a bigint for integers beyond
// 2^53. undefined properties are left out; null is nil, which no job field
// accepts.
import { encode } from "@msgpack/msgpack";

import { NESTING_MAX, WireError, fromValue, readMessage, toValue } from "./wire.js";

export const VERSION = 1;
export const ID_MAX_BYTES = 128;
export const STOP_MAX = 16;
export const TOPIC_MAX = 249;
export const LOGPROBS_MAX = 20;
export const LORA_MAX = 16;
export const CHUNK_MS_MAX = 60000;

/** The job fields, in the order of the field table in schemas/spec.md. */
export const JOB_FIELDS = Object.freeze([
  "v",
  "id",
  "prompt",
  "messages",
  "max_tokens",
  "temperature",
  "top_p",
  "top_k",
  "min_p",
  "seed",
  "repeat_penalty",
  "stop",
  "grammar",
  "json_schema",
  "stream",
  "reply_to",
  "deadline_ms",
  "model",
  "meta",
  "logprobs",
  "lora",
  "chunk_ms",
]);

/** Error codes whose replies say retryable = true; the other known codes say false. */
export const RETRYABLE_CODES = Object.freeze(
  new Set(["model_mismatch", "backend_error", "backend_failed", "internal"]),
);
export const KNOWN_CODES = Object.freeze(
  new Set([
    ...RETRYABLE_CODES,
    "malformed",
    "unsupported_version",
    "invalid_id",
    "invalid_field",
    "invalid_input",
    "prompt_too_large",
    "reply_to_denied",
    "expired",
    "context_exceeded",
    "cancelled",
  ]),
);
/** The known codes whose errors may carry partial_text. */
const PARTIAL_TEXT_CODES = new Set(["expired", "cancelled"]);

/** A job a v1 worker would reject while decoding it: `code` is the worker's
 * error code, `field` the field at fault (null when the message is no job map). */
export class InvalidJob extends Error {
  constructor(code, message, field = null) {
    super(message);
    this.name = "InvalidJob";
    this.code = code;
    this.field = field;
  }
}

/** Bytes that are not a v1 chunk, done, error or heartbeat. */
export class InvalidReply extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidReply";
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const TOPIC_RE = /^[a-zA-Z0-9._-]+$/;
const CODE_RE = /^[a-z][a-z_]*$/;
const utf8 = new TextEncoder();

// ---- node predicates -----------------------------------------------------------

const isInt = (n) => n.t === "int" && n.v >= INT64_MIN && n.v <= INT64_MAX;
const isNumber = (n) =>
  (n.t === "float" && Number.isFinite(n.v)) ||
  (n.t === "int" && n.v >= INT64_MIN && n.v <= UINT64_MAX);
const num = (n) => Number(n.v);
const textOk = (n) => n.utf8 && !n.v.includes("\0");
const byteLength = (s) => utf8.encode(s).length;

function textProblem(n, nonEmpty) {
  if (n.t !== "str" || (nonEmpty && n.v === ""))
    return nonEmpty ? "must be a non-empty string" : "must be a string";
  if (!textOk(n)) return "must be valid UTF-8 without NUL bytes";
  return null;
}

/** A map node's entries by string key: the last value, and the keys seen twice. */
function index(mapNode) {
  const values = new Map();
  const repeated = new Set();
  for (const [k, v] of mapNode.v) {
    if (k.t !== "str") continue;
    if (values.has(k.v)) repeated.add(k.v);
    values.set(k.v, v);
  }
  return { values, repeated };
}

function jsonProblem(n) {
  switch (n.t) {
    case "nil":
    case "bool":
      return null;
    case "int":
      return isInt(n) ? null : "integer out of the signed 64-bit range";
    case "float":
      return Number.isFinite(n.v) ? null : "NaN and infinity have no JSON meaning";
    case "str":
      return textOk(n) ? null : "strings must be valid UTF-8 without NUL bytes";
    case "array":
      for (const item of n.v) {
        const p = jsonProblem(item);
        if (p) return p;
      }
      return null;
    case "map": {
      const seen = new Set();
      for (const [k, v] of n.v) {
        if (k.t !== "str" || !textOk(k)) return "map keys must be UTF-8 strings";
        if (seen.has(k.v)) return "a map key is given more than once";
        seen.add(k.v);
        const p = jsonProblem(v);
        if (p) return p;
      }
      return null;
    }
    default:
      return "bin and ext values have no JSON meaning";
  }
}

// ---- job validation --------------------------------------------------------------

function reject(code, field, problem, label = field) {
  throw new InvalidJob(code, label ? `${label}: ${problem}` : problem, field);
}

function checkMessage(i, m) {
  const where = `messages[${i}]`;
  if (m.t !== "map") reject("invalid_input", "messages", "must be a map", where);
  const { values, repeated } = index(m);
  for (const [key, nonEmpty] of [
    ["role", true],
    ["content", false],
  ]) {
    if (repeated.has(key))
      reject("invalid_input", "messages", "given more than once", `${where}.${key}`);
    if (!values.has(key)) reject("invalid_input", "messages", "missing", `${where}.${key}`);
    const p = textProblem(values.get(key), nonEmpty);
    if (p) reject("invalid_input", "messages", p, `${where}.${key}`);
  }
}

/** Throw InvalidJob unless the job node passes a worker's decoding, checked
 * in the order of the field table (the first broken rule wins). */
function validateNode(root) {
  if (root.t !== "map") reject("malformed", null, "a job must be a msgpack map");
  if (!root.v.every(([k]) => k.t === "str"))
    reject("malformed", null, "job map keys must be strings");
  const { values, repeated } = index(root);
  const get = (name) => {
    if (repeated.has(name)) reject("invalid_field", name, "given more than once");
    return values.get(name);
  };
  const checkInt = (name, min) => {
    const n = get(name);
    if (n === undefined || (isInt(n) && (min === null || n.v >= BigInt(min)))) return;
    reject(
      "invalid_field",
      name,
      min === null ? "must be a signed 64-bit integer" : `must be an integer >= ${min}`,
    );
  };
  const checkNumber = (name, max) => {
    const n = get(name);
    if (n === undefined || (isNumber(n) && num(n) >= 0 && (max === null || num(n) <= max))) return;
    reject(
      "invalid_field",
      name,
      max === null ? "must be a number >= 0" : `must be a number between 0 and ${max}`,
    );
  };
  const checkText = (name, nonEmpty) => {
    const n = get(name);
    const p = n === undefined ? null : textProblem(n, nonEmpty);
    if (p) reject("invalid_field", name, p);
  };

  const v = get("v");
  if (v === undefined)
    reject("unsupported_version", "v", `missing; this client speaks v ${VERSION}`);
  if (!isInt(v) || v.v !== BigInt(VERSION))
    reject("unsupported_version", "v", `must be the integer ${VERSION}`);

  const id = get("id");
  if (id === undefined) reject("invalid_id", "id", "missing");
  const idProblem = textProblem(id, true);
  if (idProblem) reject("invalid_id", "id", idProblem);
  if (byteLength(id.v) > ID_MAX_BYTES) {
    reject("invalid_id", "id", `must be at most ${ID_MAX_BYTES} bytes (got ${byteLength(id.v)})`);
  }

  const prompt = get("prompt");
  const messages = get("messages");
  if (prompt !== undefined && messages !== undefined) {
    reject("invalid_input", "prompt", "give one, not both", "prompt, messages");
  } else if (prompt !== undefined) {
    const p = textProblem(prompt, false);
    if (p) reject("invalid_input", "prompt", p);
  } else if (messages !== undefined) {
    if (messages.t !== "array" || messages.v.length === 0) {
      reject("invalid_input", "messages", "must be a non-empty array of maps");
    }
    messages.v.forEach((m, i) => checkMessage(i, m));
  } else {
    reject("invalid_input", "prompt", "one of them is required", "prompt, messages");
  }

  checkInt("max_tokens", 1);
  checkNumber("temperature", null);
  checkNumber("top_p", 1);
  checkInt("top_k", 0);
  checkNumber("min_p", 1);
  checkInt("seed", null);
  checkNumber("repeat_penalty", null);

  const stop = get("stop");
  if (stop !== undefined) {
    if (stop.t !== "array") reject("invalid_field", "stop", "must be an array of strings");
    if (stop.v.length > STOP_MAX)
      reject("invalid_field", "stop", `at most ${STOP_MAX} strings (got ${stop.v.length})`);
    stop.v.forEach((s, i) => {
      const p = textProblem(s, true);
      if (p) reject("invalid_field", "stop", p, `stop[${i}]`);
    });
  }

  checkText("grammar", false);
  const schema = get("json_schema");
  if (schema !== undefined) {
    if (schema.t !== "map") reject("invalid_field", "json_schema", "must be a map");
    const p = jsonProblem(schema);
    if (p) reject("invalid_field", "json_schema", p);
    if (values.has("grammar"))
      reject("invalid_input", "grammar", "give one, not both", "grammar, json_schema");
  }
  const stream = get("stream");
  if (stream !== undefined && stream.t !== "bool")
    reject("invalid_field", "stream", "must be a boolean");
  const replyTo = get("reply_to");
  if (
    replyTo !== undefined &&
    !(
      replyTo.t === "str" &&
      replyTo.v.length <= TOPIC_MAX &&
      TOPIC_RE.test(replyTo.v) &&
      replyTo.v !== "." &&
      replyTo.v !== ".."
    )
  ) {
    reject(
      "invalid_field",
      "reply_to",
      `must be a Kafka topic name (1..${TOPIC_MAX} of [a-zA-Z0-9._-])`,
    );
  }
  checkInt("deadline_ms", null);
  checkText("model", true);
  const meta = get("meta");
  if (meta !== undefined && meta.t !== "map") reject("invalid_field", "meta", "must be a map");
  const checkRange = (name, max) => {
    const n = get(name);
    if (n !== undefined && !(isInt(n) && n.v >= 0n && n.v <= BigInt(max)))
      reject("invalid_field", name, `must be an integer between 0 and ${max}`);
  };
  checkRange("logprobs", LOGPROBS_MAX);
  checkLora(get("lora"));
  checkRange("chunk_ms", CHUNK_MS_MAX);
}

function checkLora(lora) {
  if (lora === undefined) return;
  if (lora.t !== "array") reject("invalid_field", "lora", "must be an array of {name, scale} maps");
  if (lora.v.length > LORA_MAX)
    reject("invalid_field", "lora", `at most ${LORA_MAX} {name, scale} maps (got ${lora.v.length})`);
  const names = new Set();
  lora.v.forEach((entry, i) => {
    const where = `lora[${i}]`;
    if (entry.t !== "map") reject("invalid_field", "lora", "must be a map", where);
    const { values, repeated } = index(entry);
    if (repeated.has("name") || repeated.has("scale"))
      reject("invalid_field", "lora", "a key given more than once", where);
    const name = values.get("name");
    const p = name === undefined ? "missing" : textProblem(name, true);
    if (p) reject("invalid_field", "lora", p, `${where}.name`);
    const scale = values.get("scale");
    if (scale !== undefined && !isNumber(scale))
      reject("invalid_field", "lora", "must be a number", `${where}.scale`);
    if (names.has(name.v))
      reject("invalid_field", "lora", `adapter ${JSON.stringify(name.v)} given twice`, where);
    names.add(name.v);
  });
}

function jobNode(job) {
  try {
    return fromValue(job);
  } catch (e) {
    if (e instanceof WireError) reject("malformed", null, `containers ${e.message}`);
    throw e;
  }
}

/** Throw InvalidJob when a v1 worker would reject this job object while decoding it. */
export function validateJob(job) {
  validateNode(jobNode(job));
}

/** The msgpack bytes of a job object, after validateJob(): known fields in
 * table order, then the others in the object's own order. */
export function encodeJob(job) {
  const root = jobNode(job);
  validateNode(root);
  const { values } = index(root);
  const ordered = {};
  for (const name of [...JOB_FIELDS, ...values.keys()]) {
    if (values.has(name) && !Object.hasOwn(ordered, name)) {
      Object.defineProperty(ordered, name, {
        value: toValue(values.get(name), true),
        enumerable: true,
      });
    }
  }
  return encode(ordered, { useBigInt64: true });
}

/** Decode and validate job bytes as a worker does (admission aside): the job
 * object, or an InvalidJob with the worker's code and field. */
export function decodeJob(data) {
  let root;
  try {
    root = readMessage(data);
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    reject("malformed", null, `not one complete msgpack value (${e.message})`);
  }
  validateNode(root);
  return toValue(root);
}

// ---- replies -------------------------------------------------------------------------

/** Typed reads of one reply map's fields; a failure names the type and field. */
class Reader {
  constructor(node, where) {
    this.values = index(node).values;
    this.where = where;
  }

  value(name, ok, what, optional = false) {
    const n = this.values.get(name);
    if (n === undefined && optional) return undefined;
    if (n === undefined || !ok(n))
      throw new InvalidReply(
        `${this.where}.${name}: ${n === undefined ? "missing" : `must be ${what}`}`,
      );
    return n;
  }

  text(name, minBytes = 0, maxBytes = null) {
    const ok = (n) =>
      n.t === "str" &&
      textOk(n) &&
      byteLength(n.v) >= minBytes &&
      (maxBytes === null || byteLength(n.v) <= maxBytes);
    const what =
      (minBytes ? "a non-empty string" : "a string") +
      (maxBytes ? ` of at most ${maxBytes} bytes` : "");
    return this.value(name, ok, what).v;
  }

  optionalText(name) {
    return this.value(name, (n) => n.t === "nil" || (n.t === "str" && textOk(n)), "a string or nil")
      .v;
  }

  integer(name, min = 0, nullable = false) {
    const ok = (n) => (nullable && n.t === "nil") || (isInt(n) && n.v >= BigInt(min));
    return toValue(this.value(name, ok, `an integer >= ${min}${nullable ? " or nil" : ""}`));
  }

  number(name, { min = null, max = null, nullable = false } = {}) {
    const ok = (n) =>
      (nullable && n.t === "nil") ||
      (isNumber(n) && (min === null || num(n) >= min) && (max === null || num(n) <= max));
    const what = ["a number", min !== null && `>= ${min}`, max !== null && `<= ${max}`];
    const n = this.value(name, ok, what.filter(Boolean).join(" ") + (nullable ? " or nil" : ""));
    return n.t === "nil" ? null : num(n);
  }

  boolean(name) {
    return this.value(name, (n) => n.t === "bool", "a boolean").v;
  }

  meta() {
    const n = this.value("meta", (m) => m.t === "map", "a map", true);
    return n === undefined ? undefined : toValue(n);
  }

  /** The optional compact logprobs array: [[token, logprob, [[token, logprob], ...]], ...],
   * a token being a string, or a Uint8Array when its bytes are not UTF-8 on their own. */
  logprobs() {
    const pair = (n, size) =>
      n.t === "array" &&
      n.v.length === size &&
      ((n.v[0].t === "str" && textOk(n.v[0])) || n.v[0].t === "bin") &&
      isNumber(n.v[1]) &&
      num(n.v[1]) <= 0;
    const entry = (n) => pair(n, 3) && n.v[2].t === "array" && n.v[2].v.every((a) => pair(a, 2));
    const n = this.value(
      "logprobs",
      (list) => list.t === "array" && list.v.every(entry),
      "an array of [token, logprob <= 0, [[token, logprob], ...]]",
      true,
    );
    return n === undefined ? undefined : toValue(n);
  }

  sub(name) {
    return new Reader(
      this.value(name, (n) => n.t === "map", "a map"),
      `${this.where}.${name}`,
    );
  }
}

/** reply with its optional fields (meta, logprobs) that are present. */
function withOptional(reply, optional) {
  const present = Object.entries(optional).filter(([, v]) => v !== undefined);
  return { ...reply, ...Object.fromEntries(present) };
}

const READERS = {
  chunk: (r) =>
    withOptional(
      {
        type: "chunk",
        id: r.text("id", 1, ID_MAX_BYTES),
        run: r.text("run", 1),
        seq: r.integer("seq"),
        text: r.text("text"),
      },
      { logprobs: r.logprobs() },
    ),
  done: (r) => {
    const u = r.sub("usage");
    const t = r.sub("timings");
    return withOptional(
      {
        type: "done",
        id: r.text("id", 1, ID_MAX_BYTES),
        run: r.text("run", 1),
        text: r.text("text"),
        finish: r.text("finish", 1),
        usage: {
          prompt_tokens: u.integer("prompt_tokens"),
          completion_tokens: u.integer("completion_tokens"),
        },
        timings: {
          queue_ms: t.number("queue_ms"),
          ttft_ms: t.number("ttft_ms", { min: 0 }),
          gen_ms: t.number("gen_ms", { min: 0 }),
          tokens_per_s: t.number("tokens_per_s", { min: 0 }),
        },
        worker: r.text("worker"),
      },
      { meta: r.meta(), logprobs: r.logprobs() },
    );
  },
  error: (r) => {
    const code = r.value(
      "code",
      (n) => n.t === "str" && CODE_RE.test(n.v),
      "a code name ([a-z][a-z_]*)",
    ).v;
    const retryable = r.boolean("retryable");
    if (KNOWN_CODES.has(code) && retryable !== RETRYABLE_CODES.has(code)) {
      throw new InvalidReply(
        `error.retryable: must be ${RETRYABLE_CODES.has(code)} for code ${code}`,
      );
    }
    const reply = {
      type: "error",
      id: r.text("id", 0, ID_MAX_BYTES),
      run: r.text("run"),
      code,
      message: r.text("message"),
      retryable,
      worker: r.text("worker"),
    };
    if (r.values.has("partial_text")) {
      reply.partial_text = r.text("partial_text");
      if (reply.run === "" || (KNOWN_CODES.has(code) && !PARTIAL_TEXT_CODES.has(code))) {
        throw new InvalidReply(
          "error.partial_text: only for a job that was generating, and of the known codes only expired and cancelled",
        );
      }
    }
    return withOptional(reply, { meta: r.meta() });
  },
  heartbeat: (r) => {
    const g = r.sub("gpu");
    const c = r.sub("counters");
    return {
      type: "heartbeat",
      worker: r.text("worker", 1),
      host: r.text("host"),
      model: r.text("model"),
      state: r.text("state", 1),
      ts_ms: r.integer("ts_ms"),
      gpu: {
        backend: g.text("backend", 1),
        name: g.optionalText("name"),
        vram_total_bytes: g.integer("vram_total_bytes", 0, true),
        vram_used_bytes: g.integer("vram_used_bytes", 0, true),
        temp_edge_c: g.number("temp_edge_c", { nullable: true }),
        temp_junction_c: g.number("temp_junction_c", { nullable: true }),
        temp_mem_c: g.number("temp_mem_c", { nullable: true }),
        power_w: g.number("power_w", { min: 0, nullable: true }),
        busy_percent: g.number("busy_percent", { min: 0, max: 100, nullable: true }),
      },
      slots_busy: r.integer("slots_busy"),
      slots_total: r.integer("slots_total", 1),
      counters: {
        jobs_done: c.integer("jobs_done"),
        jobs_failed: c.integer("jobs_failed"),
        tokens: c.integer("tokens"),
      },
    };
  },
};

/** The map node of a v1 message (v = 1) the workers write or read beside
 * jobs; InvalidReply (naming `what`) otherwise. */
function readV1Map(data, what) {
  let root;
  try {
    root = readMessage(data);
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    throw new InvalidReply(`not one complete msgpack value (${e.message})`);
  }
  if (root.t !== "map") throw new InvalidReply(`a ${what} must be a msgpack map`);
  const v = index(root).values.get("v");
  if (v === undefined) throw new InvalidReply("v: missing");
  if (!isInt(v) || v.v !== BigInt(VERSION))
    throw new InvalidReply(`v: must be the integer ${VERSION}`);
  return root;
}

/** Decode a chunk, done, error or heartbeat into a plain object with its
 * `type` and known fields (unknown fields are ignored); InvalidReply when
 * the bytes are not such a v1 message. Timings and GPU readings are numbers
 * whether the writer sent an int or a float. */
export function decodeReply(data) {
  const root = readV1Map(data, "reply");
  const { values } = index(root);
  const type = values.get("type");
  const read = type?.t === "str" && Object.hasOwn(READERS, type.v) ? READERS[type.v] : null;
  if (!read)
    throw new InvalidReply(`type: not a v1 reply type: ${type?.t === "str" ? type.v : type?.t}`);
  return read(new Reader(root, type.v));
}

export { NESTING_MAX };

// ---- cancel (control topic) ------------------------------------------------------------

const CANCEL_FIELDS = new Set(["v", "type", "id", "run", "reason"]);

/** The msgpack bytes of a cancel message for job `id`: v, type, id, then run
 * and reason when given, then the other properties of `extra`. InvalidJob
 * (code and field) for a cancel a worker would ignore. */
export function encodeCancel({ id, run, reason, ...extra }) {
  const problem = textProblem(fromValue(id), true);
  if (problem) reject("invalid_id", "id", problem);
  if (byteLength(id) > ID_MAX_BYTES) reject("invalid_id", "id", `must be at most ${ID_MAX_BYTES} bytes`);
  const message = { v: VERSION, type: "cancel", id };
  for (const [name, value, nonEmpty] of [
    ["run", run, true],
    ["reason", reason, false],
  ]) {
    if (value === undefined) continue;
    const p = textProblem(fromValue(value), nonEmpty);
    if (p) reject("invalid_field", name, p);
    message[name] = value;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (!CANCEL_FIELDS.has(k) && v !== undefined) message[k] = v;
  }
  return encode(message);
}

/** Read a cancel message as a worker does: {id, run?, reason?, ...unknown},
 * or an InvalidReply saying why a worker would ignore it. */
export function decodeCancel(data) {
  const root = readV1Map(data, "cancel");
  const r = new Reader(root, "cancel");
  if (r.values.get("type")?.v !== "cancel")
    throw new InvalidReply("type: not a v1 control message type");
  const out = { id: r.text("id", 1, ID_MAX_BYTES) };
  if (r.values.has("run")) out.run = r.text("run", 1);
  if (r.values.has("reason")) out.reason = r.text("reason");
  const all = toValue(root);
  for (const [k, val] of Object.entries(all)) if (!CANCEL_FIELDS.has(k)) out[k] = val;
  return out;
}
