// errors.js — the errors of the llmq client (the codec's InvalidJob and
// InvalidReply live in codec.js):
//
//   JobFailed        the worker answered an `error` reply (code, message,
//   │                retryable, run, worker, partialText, reply)
//   ├── JobRejected  the job was refused as submitted (it never ran)
//   ├── JobExpired   deadline_ms passed before the job finished
//   ├── WorkerFailure  llama-server or the worker failed (retryable)
//   └── JobCancelled the job was cancelled through the control topic
//   DeliveryFailed   the broker did not acknowledge a job
//   ClientClosed     the client closed before the job ended
//
// A JobFailed whose code this library does not know is a plain JobFailed;
// its `retryable` (set by the worker) says whether submitting again may help.

import { KNOWN_CODES } from "./codec.js";

export class JobFailed extends Error {
  constructor(reply) {
    super(`job ${reply.id}: ${reply.code}: ${reply.message}`);
    this.name = new.target.name;
    this.reply = reply;
    this.jobId = reply.id;
    this.code = reply.code;
    this.retryable = reply.retryable;
    this.run = reply.run;
    this.worker = reply.worker;
    /** What the run generated before it was stopped (expired or cancelled
     * while generating); undefined when the reply carries none. */
    this.partialText = reply.partial_text;
  }
}

export class JobRejected extends JobFailed {}
export class JobExpired extends JobFailed {}
export class WorkerFailure extends JobFailed {}
export class JobCancelled extends JobFailed {}

export class DeliveryFailed extends Error {
  constructor(jobId, reason) {
    super(`job ${jobId}: not delivered to Kafka: ${reason}`);
    this.name = "DeliveryFailed";
    this.jobId = jobId;
    this.reason = reason;
  }
}

export class ClientClosed extends Error {
  constructor(message) {
    super(message);
    this.name = "ClientClosed";
  }
}

/** Errors of the worker or llama-server; every other known code not named
 * here (expired, cancelled) means the job was refused as submitted. */
const WORKER_FAILURES = ["backend_error", "backend_failed", "internal"];
const BY_CODE = new Map([
  ...[...KNOWN_CODES].map((code) => [code, JobRejected]),
  ["expired", JobExpired],
  ["cancelled", JobCancelled],
  ...WORKER_FAILURES.map((code) => [code, WorkerFailure]), // later entries win
]);

/** The JobFailed subclass for an error reply (JobFailed itself for unknown codes). */
export function jobFailed(reply) {
  const Class = BY_CODE.get(reply.code) ?? JobFailed;
  return new Class(reply);
}
