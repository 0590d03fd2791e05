// Heartbeat.java — a worker's periodic status from the metrics topic.
package dev.llmq;

/** A worker's status; GPU readings the backend cannot give are null. */
public record Heartbeat(
    String worker,
    String host,
    String model,
    String state,
    long tsMs,
    Gpu gpu,
    long slotsBusy,
    long slotsTotal,
    Counters counters)
    implements Reply {
  @Override
  public String type() {
    return "heartbeat";
  }

  /** A GPU reading; null for what the backend cannot read (all of it for backend none). */
  public record Gpu(
      String backend,
      String name,
      Long vramTotalBytes,
      Long vramUsedBytes,
      Double tempEdgeC,
      Double tempJunctionC,
      Double tempMemC,
      Double powerW,
      Double busyPercent) {}

  /** Counts since the worker started. */
  public record Counters(long jobsDone, long jobsFailed, long tokens) {}
}
