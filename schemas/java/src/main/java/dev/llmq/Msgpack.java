// Msgpack.java — msgpack bytes to Java values and back, keeping what the contract's verdicts need.
package dev.llmq;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessagePackException;
import org.msgpack.core.MessageUnpacker;

/**
 * The Java values of msgpack, as this library reads and writes them:
 *
 * <ul>
 *   <li>nil: null; bool: Boolean; int: Long, or BigInteger beyond Long (up to 2^64-1); float32:
 *       Float; float64: Double; str: String, or {@link BadText} when its bytes are not UTF-8;
 *       bin: byte[]; ext: {@link Ext}; array: List; map: a LinkedHashMap in wire order.
 * </ul>
 *
 * <p>What a general decoder would erase and the verdicts need is kept: a decoded map remembers
 * the keys given more than once and whether a key was not a str ({@link DecodedMap}). Writing
 * uses each integer's smallest form, float64 for every float (except a {@link Float32}), str for
 * String and bin for byte[].
 */
public final class Msgpack {
  /** A value written as a msgpack float32 (the worker's logprobs; spec.md, conventions). */
  record Float32(float value) {}

  /** Containers may nest this deep, the outer map included (schemas/spec.md, conventions). */
  public static final int NESTING_MAX = 32;

  private Msgpack() {}

  /** A msgpack str whose bytes are not valid UTF-8; kept as bytes so a verdict can refuse it. */
  public static final class BadText {
    private final byte[] bytes;

    BadText(byte[] bytes) {
      this.bytes = bytes.clone();
    }

    /** The str's bytes as they came. */
    public byte[] bytes() {
      return bytes.clone();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof BadText b && Arrays.equals(bytes, b.bytes);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
      return new String(bytes, StandardCharsets.UTF_8);
    }
  }

  /** A msgpack ext value: its type byte and its data. */
  public static final class Ext {
    private final byte type;
    private final byte[] data;

    /** An ext value of {@code type} holding {@code data}. */
    public Ext(byte type, byte[] data) {
      this.type = type;
      this.data = data.clone();
    }

    /** The application-defined type byte. */
    public byte type() {
      return type;
    }

    /** The data bytes. */
    public byte[] data() {
      return data.clone();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Ext e && type == e.type && Arrays.equals(data, e.data);
    }

    @Override
    public int hashCode() {
      return 31 * type + Arrays.hashCode(data);
    }
  }

  /**
   * A map as read from msgpack: the entries in wire order (the last of a repeated key wins), plus
   * the keys given more than once and whether some key was not a str.
   */
  public static final class DecodedMap extends LinkedHashMap<Object, Object> {
    private static final long serialVersionUID = 1L;
    private final Set<Object> repeated = new HashSet<>();
    private boolean oddKeys;

    /** The keys given more than once. */
    public Set<Object> repeated() {
      return repeated;
    }

    /** Whether some key was not a str. */
    public boolean oddKeys() {
      return oddKeys;
    }
  }

  /** The bytes are not one complete msgpack value nested at most NESTING_MAX deep. */
  static final class MalformedException extends Exception {
    private static final long serialVersionUID = 1L;

    MalformedException(String message) {
      super(message);
    }
  }

  // ---- reading -------------------------------------------------------------------------

  /** One complete msgpack value, nothing after it, containers nested at most NESTING_MAX deep. */
  static Object read(byte[] data) throws MalformedException {
    try (MessageUnpacker in = MessagePack.newDefaultUnpacker(data)) {
      Object value = new Reader(in, data.length).value(1);
      if (in.hasNext()) {
        throw new MalformedException("bytes after the message");
      }
      return value;
    } catch (MessagePackException | IOException e) {
      throw new MalformedException("not one complete msgpack value: " + e.getMessage());
    }
  }

  /** Reads values off one unpacker, refusing lengths the bytes left cannot hold. */
  private static final class Reader {
    private final MessageUnpacker in;
    private final long size;

    Reader(MessageUnpacker in, long size) {
      this.in = in;
      this.size = size;
    }

    private int fits(long n, int bytesPerItem) throws MalformedException {
      if (n < 0 || n * bytesPerItem > size - in.getTotalReadBytes()) {
        throw new MalformedException("cut short (a length of " + n + " with fewer bytes left)");
      }
      return (int) n;
    }

    Object value(int depth) throws IOException, MalformedException {
      MessageFormat f = in.getNextFormat();
      switch (f.getValueType()) {
        case NIL:
          in.unpackNil();
          return null;
        case BOOLEAN:
          return in.unpackBoolean();
        case INTEGER:
          if (f == MessageFormat.UINT64) {
            BigInteger big = in.unpackBigInteger();
            return big.bitLength() < 64 ? (Object) big.longValue() : big;
          }
          return in.unpackLong();
        case FLOAT:
          return f == MessageFormat.FLOAT32 ? (Object) in.unpackFloat() : in.unpackDouble();
        case STRING:
          return text(in.readPayload(fits(in.unpackRawStringHeader(), 1)));
        case BINARY:
          return in.readPayload(fits(in.unpackBinaryHeader(), 1));
        case EXTENSION:
          var h = in.unpackExtensionTypeHeader();
          return new Ext(h.getType(), in.readPayload(fits(h.getLength(), 1)));
        case ARRAY:
          return array(depth);
        case MAP:
          return map(depth);
        default:
          throw new MalformedException("byte 0xc1 is never used");
      }
    }

    private List<Object> array(int depth) throws IOException, MalformedException {
      int n = fits(in.unpackArrayHeader() & 0xffffffffL, 1);
      tooDeep(depth);
      List<Object> list = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        list.add(value(depth + 1));
      }
      return list;
    }

    private DecodedMap map(int depth) throws IOException, MalformedException {
      int n = fits(in.unpackMapHeader() & 0xffffffffL, 2);
      tooDeep(depth);
      DecodedMap m = new DecodedMap();
      for (int i = 0; i < n; i++) {
        Object key = value(depth + 1);
        if (!(key instanceof String || key instanceof BadText)) {
          m.oddKeys = true;
        }
        if (m.containsKey(key)) {
          m.repeated.add(key);
        }
        m.put(key, value(depth + 1));
      }
      return m;
    }

    private static void tooDeep(int depth) throws MalformedException {
      if (depth > NESTING_MAX) {
        throw new MalformedException("containers nested over " + NESTING_MAX + " deep");
      }
    }
  }

  /** A str's bytes as a String, or a BadText when they are not UTF-8. */
  private static Object text(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (CharacterCodingException e) {
      return new BadText(bytes);
    }
  }

  /** The UTF-8 bytes of a String, or null when it holds an unpaired surrogate. */
  static byte[] utf8(String s) {
    try {
      ByteBuffer b =
          StandardCharsets.UTF_8
              .newEncoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .encode(CharBuffer.wrap(s));
      return Arrays.copyOf(b.array(), b.limit());
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  // ---- writing -------------------------------------------------------------------------

  /** A writer for one message: add values in order, then take the bytes. */
  static final class Writer {
    private final MessageBufferPacker out = MessagePack.newDefaultBufferPacker();

    /** Starts a map of n entries; write its keys and values next. */
    Writer map(int n) {
      try {
        out.packMapHeader(n);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      return this;
    }

    /** Writes one value (any of the types listed on {@link Msgpack}, or a Collection / Map). */
    Writer value(Object v) {
      try {
        write(v);
      } catch (IOException e) {
        throw new IllegalStateException(e); // a buffer packer does no I/O
      }
      return this;
    }

    /** The bytes written so far. */
    byte[] bytes() {
      return out.toByteArray();
    }

    private void write(Object v) throws IOException {
      if (v == null) {
        out.packNil();
      } else if (v instanceof Boolean b) {
        out.packBoolean(b);
      } else if (v instanceof Long || v instanceof Integer || v instanceof Short
          || v instanceof Byte) {
        out.packLong(((Number) v).longValue());
      } else if (v instanceof BigInteger b) {
        out.packBigInteger(b); // throws beyond 2^64-1
      } else if (v instanceof Double || v instanceof Float) {
        out.packDouble(((Number) v).doubleValue());
      } else if (v instanceof Float32 f) {
        out.packFloat(f.value());
      } else if (v instanceof String s) {
        writeText(s);
      } else if (v instanceof BadText t) {
        out.packRawStringHeader(t.bytes.length).writePayload(t.bytes);
      } else if (v instanceof byte[] b) {
        out.packBinaryHeader(b.length).writePayload(b);
      } else if (v instanceof Ext e) {
        out.packExtensionTypeHeader(e.type, e.data.length).writePayload(e.data);
      } else if (v instanceof Map<?, ?> m) {
        out.packMapHeader(m.size());
        for (Map.Entry<?, ?> e : m.entrySet()) {
          write(e.getKey());
          write(e.getValue());
        }
      } else if (v instanceof Collection<?> c) {
        out.packArrayHeader(c.size());
        for (Object item : c) {
          write(item);
        }
      } else {
        throw new IllegalArgumentException("no msgpack form for " + v.getClass().getName());
      }
    }

    private void writeText(String s) throws IOException {
      byte[] b = utf8(s);
      if (b == null) {
        throw new IllegalArgumentException("a string holds an unpaired surrogate");
      }
      out.packRawStringHeader(b.length).writePayload(b);
    }
  }
}
