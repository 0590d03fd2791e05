// llmq-client — submit jobs to llmq workers over Kafka from Node.js (wire
// contract v1, schemas/spec.md): Client (submit, submitMany/collect, stream,
// cancel), and the codec underneath it (encodeJob, decodeReply, ...) for
// those who bring their own Kafka client.
export {
  CHUNK_MS_MAX,
  ID_MAX_BYTES,
  InvalidJob,
  InvalidReply,
  JOB_FIELDS,
  KNOWN_CODES,
  LOGPROBS_MAX,
  LORA_MAX,
  NESTING_MAX,
  RETRYABLE_CODES,
  STOP_MAX,
  TOPIC_MAX,
  VERSION,
  decodeCancel,
  decodeJob,
  decodeReply,
  encodeCancel,
  encodeJob,
  validateJob,
} from "./lib/codec.js";
export { Client } from "./lib/client.js";
export {
  ClientClosed,
  DeliveryFailed,
  JobCancelled,
  JobExpired,
  JobFailed,
  JobRejected,
  WorkerFailure,
  jobFailed,
} from "./lib/errors.js";
export { Stream, StreamRestarted } from "./lib/stream.js";
export { ExtData } from "@msgpack/msgpack";
