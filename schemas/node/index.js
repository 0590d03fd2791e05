// llmq-client — encode llmq jobs and decode llmq replies in Node.js (wire
// contract v1, schemas/spec.md). Sending and receiving is left to your Kafka
// client: produce encodeJob(job) to the jobs topic with the job id as the key,
// and read replies from the reply topic with decodeReply(message.value).
export {
  ID_MAX_BYTES,
  InvalidJob,
  InvalidReply,
  JOB_FIELDS,
  KNOWN_CODES,
  NESTING_MAX,
  RETRYABLE_CODES,
  STOP_MAX,
  TOPIC_MAX,
  VERSION,
  decodeJob,
  decodeReply,
  encodeJob,
  validateJob,
} from "./lib/codec.js";
export { ExtData } from "@msgpack/msgpack";
