// ReplyMaps.java — a decoded reply as the map of its wire fields, to compare with a vector's JSON
// meaning field by field (written from the record's accessors, independently of encodeReply).
package dev.llmq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

final class ReplyMaps {
  private ReplyMaps() {}

  static Map<String, Object> toMap(Reply r) {
    Map<String, Object> m = ordered("v", 1L, "type", r.type());
    if (r instanceof Chunk c) {
      m.putAll(ordered("id", c.id(), "run", c.run(), "seq", c.seq(), "text", c.text()));
      putLogprobs(m, c.logprobs());
    } else if (r instanceof Done d) {
      m.putAll(ordered("id", d.id(), "run", d.run(), "text", d.text(), "finish", d.finish(),
          "usage", ordered("prompt_tokens", d.usage().promptTokens(),
              "completion_tokens", d.usage().completionTokens()),
          "timings", ordered("queue_ms", d.timings().queueMs(), "ttft_ms", d.timings().ttftMs(),
              "gen_ms", d.timings().genMs(), "tokens_per_s", d.timings().tokensPerS()),
          "worker", d.worker()));
      putLogprobs(m, d.logprobs());
      if (d.meta() != null) {
        m.put("meta", d.meta());
      }
    } else if (r instanceof ErrorReply e) {
      m.putAll(ordered("id", e.id(), "run", e.run(), "code", e.code(), "message", e.message(),
          "retryable", e.retryable(), "worker", e.worker()));
      if (e.partialText() != null) {
        m.put("partial_text", e.partialText());
      }
      if (e.meta() != null) {
        m.put("meta", e.meta());
      }
    } else if (r instanceof Heartbeat h) {
      Heartbeat.Gpu g = h.gpu();
      m.putAll(ordered("worker", h.worker(), "host", h.host(), "model", h.model(),
          "state", h.state(), "ts_ms", h.tsMs(),
          "gpu", ordered("backend", g.backend(), "name", g.name(),
              "vram_total_bytes", g.vramTotalBytes(), "vram_used_bytes", g.vramUsedBytes(),
              "temp_edge_c", g.tempEdgeC(), "temp_junction_c", g.tempJunctionC(),
              "temp_mem_c", g.tempMemC(), "power_w", g.powerW(), "busy_percent", g.busyPercent()),
          "slots_busy", h.slotsBusy(), "slots_total", h.slotsTotal(),
          "counters", ordered("jobs_done", h.counters().jobsDone(),
              "jobs_failed", h.counters().jobsFailed(), "tokens", h.counters().tokens())));
    }
    return m;
  }

  /** logprobs as JSON holds them: [[token, logprob, [[token, logprob], ...]], ...]. */
  static void putLogprobs(Map<String, Object> m, List<TokenLogprob> logprobs) {
    if (logprobs == null) {
      return;
    }
    List<Object> out = new ArrayList<>();
    for (TokenLogprob e : logprobs) {
      List<Object> top = new ArrayList<>();
      e.top().forEach(a -> top.add(List.of(a.token().text(), a.logprob())));
      out.add(List.of(e.token().text(), e.logprob(), top));
    }
    m.put("logprobs", out);
  }

  static Map<String, Object> ordered(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }
}
