// Chunk.java — a piece of output of one run of a job (a chunk reply).
package dev.llmq;

import java.util.List;

/**
 * A piece of output: {@code seq} 0, 1, 2, ... within {@code run}; text may be empty. {@code
 * logprobs}, when the job asked for them, are the entries of the tokens generated since the
 * previous chunk (null when absent).
 */
public record Chunk(String id, String run, long seq, String text, List<TokenLogprob> logprobs)
    implements Reply {
  /** A chunk without log-probabilities. */
  public Chunk(String id, String run, long seq, String text) {
    this(id, run, seq, text, null);
  }

  /** Copies logprobs when given. */
  public Chunk {
    logprobs = logprobs == null ? null : List.copyOf(logprobs);
  }

  @Override
  public String type() {
    return "chunk";
  }
}
