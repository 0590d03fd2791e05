// Reply.java — the messages a worker writes: chunk, done, error (replies) and heartbeat.
package dev.llmq;

/**
 * A decoded v1 message from a reply or metrics topic ({@link Codec#decodeReply}). Switch on the
 * record type: {@link Chunk}, {@link Done}, {@link ErrorReply}, {@link Heartbeat}.
 */
public sealed interface Reply permits Chunk, Done, ErrorReply, Heartbeat {
  /** The wire type: chunk, done, error or heartbeat. */
  String type();
}
