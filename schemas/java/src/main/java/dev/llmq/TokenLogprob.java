// TokenLogprob.java — one generated token's log-probability and its most likely alternatives.
package dev.llmq;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * One entry of a chunk's or done's {@code logprobs} (schemas/spec.md, "Log-probabilities"): the
 * generated {@code token}, the natural log of the probability the model gave it ({@code logprob}
 * &lt;= 0, a float32 on the wire), and the {@code top} most likely tokens at its place, most
 * likely first.
 */
public record TokenLogprob(Token token, double logprob, List<Alternative> top) {
  /** Copies {@code top}; it is never null. */
  public TokenLogprob {
    top = List.copyOf(top);
  }

  /** One alternative at a token's place. */
  public record Alternative(Token token, double logprob) {}

  /**
   * A token: its {@code text}, or, when its bytes are not valid UTF-8 on their own (a character
   * split over two tokens, sent as a msgpack bin), those bytes in {@code bin} and a null text.
   * Joined as bytes, a run's tokens make its text.
   */
  public record Token(String text, byte[] bin) {
    /** Exactly one of text and bin is given. */
    public Token {
      if ((text == null) == (bin == null)) {
        throw new IllegalArgumentException("a token is text or bytes, not both or neither");
      }
      bin = bin == null ? null : bin.clone();
    }

    /** A token that is whole UTF-8 characters. */
    public static Token of(String text) {
      return new Token(text, null);
    }

    /** A token whose bytes are not UTF-8 on their own. */
    public static Token ofBytes(byte[] bytes) {
      return new Token(null, bytes);
    }

    /** The token's bytes, whichever way it was sent. */
    public byte[] bytes() {
      return text != null ? text.getBytes(StandardCharsets.UTF_8) : bin.clone();
    }

    @Override
    public byte[] bin() {
      return bin == null ? null : bin.clone();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Token t && java.util.Objects.equals(text, t.text)
          && Arrays.equals(bin, t.bin);
    }

    @Override
    public int hashCode() {
      return text != null ? text.hashCode() : Arrays.hashCode(bin);
    }

    @Override
    public String toString() {
      return text != null ? text : "bin" + Arrays.toString(bin);
    }
  }
}
