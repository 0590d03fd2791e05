// SteeringTest.java — the steering job fields (logprobs, lora, chunk_ms) in the Job builder,
// logprobs in replies (bin tokens, float32), partial_text on JobFailedException, and lanes.
package dev.llmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SteeringTest {
  static byte[] vector(String name) throws Exception {
    return Files.readAllBytes(VectorsTest.VECTORS.resolve(name + ".msgpack"));
  }

  @Test
  void builderSetsTheSteeringFieldsInTableOrder() {
    Job job = Job.prompt("a").id("j-1").chunkMs(0).lora(List.of(Job.lora("style", 0.5),
        Job.lora("tiny-lora", null))).logprobs(5).meta(Map.of("k", "v")).field("priority", 3)
        .build();
    Job back = Codec.decodeJob(Codec.encodeJob(job));
    assertEquals(List.of("v", "id", "prompt", "meta", "logprobs", "lora", "chunk_ms", "priority"),
        new ArrayList<>(back.toMap().keySet()));
    assertEquals(List.of(Map.of("name", "style", "scale", 0.5), Map.of("name", "tiny-lora")),
        back.get("lora"));
    assertEquals(5L, back.get("logprobs"));
  }

  static void rejects(Job.Builder b, String field) {
    InvalidJobException e =
        assertThrows(InvalidJobException.class, () -> Codec.validateJob(b.build()));
    assertEquals("invalid_field", e.code(), e.getMessage());
    assertEquals(field, e.field(), e.getMessage());
    assertTrue(e.getMessage().startsWith(field), e.getMessage());
  }

  @Test
  void steeringFieldsAreValidatedBeforeSending() {
    rejects(Job.prompt("a").id("j").logprobs(21), "logprobs");
    rejects(Job.prompt("a").id("j").chunkMs(60_001), "chunk_ms");
    rejects(Job.prompt("a").id("j").lora(List.of(Job.lora("", 1))), "lora");
    rejects(Job.prompt("a").id("j").lora(List.of(Job.lora("a", 1), Job.lora("a", 2))), "lora");
    rejects(Job.prompt("a").id("j").lora(List.of(Job.lora("a", Double.NaN))), "lora");
    Map<String, Object> nullScale = new LinkedHashMap<>();
    nullScale.put("name", "a");
    nullScale.put("scale", null);
    rejects(Job.prompt("a").id("j").lora(List.of(nullScale)), "lora");
    rejects(Job.prompt("a").id("j").field("lora", List.of(Map.of("name", "a"))).field("logprobs", 1.0),
        "logprobs");
    List<Map<String, Object>> many = new ArrayList<>();
    for (int i = 0; i <= 16; i++) {
      many.add(Job.lora("a" + i, null));
    }
    rejects(Job.prompt("a").id("j").lora(many), "lora");
    Codec.validateJob(Job.prompt("a").id("j").lora(List.of()).build()); // the base model
  }

  @Test
  void chunksLogprobsJoinToTheDones() throws Exception {
    Chunk a = (Chunk) Codec.decodeReply(vector("chunk_logprobs"));
    Chunk b = (Chunk) Codec.decodeReply(vector("chunk_logprobs_last"));
    Done d = (Done) Codec.decodeReply(vector("done_logprobs"));
    List<TokenLogprob> joined = new ArrayList<>(a.logprobs());
    joined.addAll(b.logprobs());
    assertEquals(d.logprobs(), joined);
    assertEquals(d.text(), a.text() + b.text());
    assertEquals(TokenLogprob.Token.of("Hello"), a.logprobs().get(0).token());
    assertNull(((Chunk) Codec.decodeReply(Codec.encodeReply(new Chunk("j", "r", 0, "x"))))
        .logprobs());
  }

  @Test
  void tokensSplitInsideACharacterAreBytes() throws Exception {
    Chunk c = (Chunk) Codec.decodeReply(vector("chunk_logprobs_split_char"));
    ByteArrayOutputStream joined = new ByteArrayOutputStream();
    for (TokenLogprob e : c.logprobs()) {
      assertNull(e.token().text());
      joined.write(e.token().bytes());
    }
    assertEquals(c.text(), joined.toString(java.nio.charset.StandardCharsets.UTF_8));
    assertArrayEquals(vector("chunk_logprobs_split_char"), Codec.encodeReply(c));
  }

  @Test
  void partialTextIsOnTheException() {
    ErrorReply r = new ErrorReply("j", "w1-1", "cancelled", "cancelled: enough", false, "w",
        "Once", null);
    JobFailedException e = JobFailedException.of((ErrorReply) Codec.decodeReply(Codec.encodeReply(r)));
    assertTrue(e instanceof JobFailedException.JobCancelledException);
    assertEquals("Once", e.partialText());
    ErrorReply future = new ErrorReply("j", "r", "future_code", "m", true, "w", "so far", null);
    assertEquals(future, Codec.decodeReply(Codec.encodeReply(future))); // a new code may carry it
    assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(Codec.encodeReply(
        new ErrorReply("j", "r", "internal", "m", true, "w", "x", null))));
  }

  @Test
  void aLaneNamesItsJobsTopic() {
    Map<String, String> lanes = Map.of("urgent", "llmq.jobs.urgent", "batch", "llmq.jobs.batch");
    assertEquals("llmq.jobs", LlmqClient.laneTopic(lanes, "llmq.jobs", null));
    assertEquals("llmq.jobs.urgent", LlmqClient.laneTopic(lanes, "llmq.jobs", "urgent"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LlmqClient.laneTopic(lanes, "llmq.jobs", "vip"));
    assertTrue(e.getMessage().startsWith("lane vip: not one of this client's lanes [batch, urgent]"),
        e.getMessage());
  }
}
