// Chunk.java — a piece of output of one run of a job (a chunk reply).
package dev.llmq;

/** A piece of output: {@code seq} 0, 1, 2, ... within {@code run}; text may be empty. */
public record Chunk(String id, String run, long seq, String text) implements Reply {
  @Override
  public String type() {
    return "chunk";
  }
}
