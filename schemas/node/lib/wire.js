// wire.js — msgpack bytes and JS values as typed nodes, for validation.
//
// The worker's verdicts depend on what a general msgpack decoder erases: a
// float 1.0 is not the int 1, a key may be given twice or be no string, a str
// may hold bytes that are not UTF-8. readMessage() keeps all of that as a
// tree of nodes; fromValue() makes the same tree from JS values a producer
// holds; toValue() turns a tree back into plain JS values. Node kinds:
//   {t: "nil"|"bool"|"float"|"bin", v}     {t: "int", v: BigInt}
//   {t: "str", v, utf8: bool}              {t: "ext", type, v: Uint8Array}
//   {t: "array", v: [node]}                {t: "map", v: [[keyNode, valueNode]]}
import { ExtData } from "@msgpack/msgpack";

export const NESTING_MAX = 32; // containers, the outer map included (schemas/spec.md)

/** The bytes are not one complete msgpack value nested at most NESTING_MAX deep. */
export class WireError extends Error {}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");

/** One complete msgpack value, nothing after it, as a node tree. */
export function readMessage(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;

  const take = (n) => {
    if (n > bytes.length - off) throw new WireError("cut short");
    const at = off;
    off += n;
    return at;
  };
  const length = (width) => {
    const at = take(width);
    return width === 1 ? view.getUint8(at) : width === 2 ? view.getUint16(at) : view.getUint32(at);
  };
  const int = (v) => ({ t: "int", v: BigInt(v) });
  const str = (n) => {
    const raw = bytes.subarray(take(n), off);
    try {
      return { t: "str", v: strict.decode(raw), utf8: true };
    } catch {
      return { t: "str", v: lenient.decode(raw), utf8: false };
    }
  };
  const bin = (n) => ({ t: "bin", v: bytes.slice(take(n), off) });
  const ext = (n) => {
    const type = view.getInt8(take(1));
    return { t: "ext", type, v: bytes.slice(take(n), off) };
  };

  function container(kind, n, depth) {
    if (depth >= NESTING_MAX) throw new WireError(`nested over ${NESTING_MAX} deep`);
    const items = kind === "map" ? 2 * n : n;
    if (items > bytes.length - off) throw new WireError("cut short"); // a byte per item at least
    const v = [];
    for (let i = 0; i < n; i++) {
      v.push(kind === "map" ? [read(depth + 1), read(depth + 1)] : read(depth + 1));
    }
    return { t: kind, v };
  }

  function read(depth) {
    const b = view.getUint8(take(1));
    if (b <= 0x7f) return int(b);
    if (b >= 0xe0) return int(b - 0x100);
    if (b <= 0x8f) return container("map", b & 0x0f, depth);
    if (b <= 0x9f) return container("array", b & 0x0f, depth);
    if (b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return { t: "nil", v: null };
      case 0xc2:
        return { t: "bool", v: false };
      case 0xc3:
        return { t: "bool", v: true };
      case 0xc4:
        return bin(length(1));
      case 0xc5:
        return bin(length(2));
      case 0xc6:
        return bin(length(4));
      case 0xc7:
        return ext(length(1));
      case 0xc8:
        return ext(length(2));
      case 0xc9:
        return ext(length(4));
      case 0xca:
        return { t: "float", v: view.getFloat32(take(4)) };
      case 0xcb:
        return { t: "float", v: view.getFloat64(take(8)) };
      case 0xcc:
        return int(view.getUint8(take(1)));
      case 0xcd:
        return int(view.getUint16(take(2)));
      case 0xce:
        return int(view.getUint32(take(4)));
      case 0xcf:
        return int(view.getBigUint64(take(8)));
      case 0xd0:
        return int(view.getInt8(take(1)));
      case 0xd1:
        return int(view.getInt16(take(2)));
      case 0xd2:
        return int(view.getInt32(take(4)));
      case 0xd3:
        return int(view.getBigInt64(take(8)));
      case 0xd4:
        return ext(1);
      case 0xd5:
        return ext(2);
      case 0xd6:
        return ext(4);
      case 0xd7:
        return ext(8);
      case 0xd8:
        return ext(16);
      case 0xd9:
        return str(length(1));
      case 0xda:
        return str(length(2));
      case 0xdb:
        return str(length(4));
      case 0xdc:
        return container("array", length(2), depth);
      case 0xdd:
        return container("array", length(4), depth);
      case 0xde:
        return container("map", length(2), depth);
      case 0xdf:
        return container("map", length(4), depth);
      default:
        throw new WireError("byte 0xc1 is never used");
    }
  }

  const node = read(0);
  if (off !== bytes.length) throw new WireError(`${bytes.length - off} trailing byte(s)`);
  return node;
}

const LONE_SURROGATE = /\p{Cs}/u;

/** The node tree of a JS value: integral numbers that are safe integers are
 * ints (as msgpack would encode them), other numbers floats; bigint is int;
 * Uint8Array/Buffer is bin; ExtData is ext; arrays and plain objects are
 * arrays and maps (undefined properties left out). Over NESTING_MAX deep
 * (or cyclic) throws WireError; other values throw TypeError. */
export function fromValue(x, depth = 0) {
  if (x === null || x === undefined) return { t: "nil", v: null };
  switch (typeof x) {
    case "boolean":
      return { t: "bool", v: x };
    case "number":
      return Number.isSafeInteger(x) ? { t: "int", v: BigInt(x) } : { t: "float", v: x };
    case "bigint":
      return { t: "int", v: x };
    case "string":
      return { t: "str", v: x, utf8: !LONE_SURROGATE.test(x) };
    case "object":
      break;
    default:
      throw new TypeError(`a ${typeof x} has no msgpack form`);
  }
  if (x instanceof ExtData) return { t: "ext", type: x.type, v: x.data };
  if (ArrayBuffer.isView(x))
    return { t: "bin", v: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) };
  if (depth >= NESTING_MAX) throw new WireError(`nested over ${NESTING_MAX} deep`);
  if (Array.isArray(x)) return { t: "array", v: x.map((item) => fromValue(item, depth + 1)) };
  if (x instanceof Map || x instanceof Set || x instanceof Date) {
    throw new TypeError(
      `a ${x.constructor.name} has no msgpack form here: use plain objects and arrays`,
    );
  }
  return {
    t: "map",
    v: Object.entries(x)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [fromValue(k), fromValue(v, depth + 1)]),
  };
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U32 = 2n ** 32n;
const I32 = 2n ** 31n;

/** Plain JS values of a node tree. Maps with string keys become objects, others
 * Maps. Ints become numbers where that is exact, else bigints; with
 * `forEncoding`, ints outside 32 bits stay bigints so that @msgpack/msgpack
 * (useBigInt64) writes them as 64-bit ints, never as floats. */
export function toValue(node, forEncoding = false) {
  switch (node.t) {
    case "int": {
      const limit = forEncoding ? (node.v < 0n ? I32 : U32 - 1n) : SAFE;
      return node.v >= -limit && node.v <= limit ? Number(node.v) : node.v;
    }
    case "ext":
      return new ExtData(node.type, node.v);
    case "array":
      return node.v.map((item) => toValue(item, forEncoding));
    case "map": {
      if (!node.v.every(([k]) => k.t === "str")) {
        return new Map(node.v.map(([k, v]) => [toValue(k, forEncoding), toValue(v, forEncoding)]));
      }
      const obj = {};
      for (const [k, v] of node.v) {
        Object.defineProperty(obj, k.v, {
          value: toValue(v, forEncoding),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return obj;
    }
    default:
      return node.v;
  }
}
