// wire.go — msgpack bytes and Go values, keeping what the contract's rules
// need and a general decoder erases: a float 1.0 is not the int 1, a map key
// may be given twice or be no string, a str may hold bytes that are not
// UTF-8, and map order is kept (so encoding a decoded job gives its bytes).
//
// Values are: nil, bool, int64, uint64 (only above MaxInt64), float64
// (float32 on the wire is widened), string (raw bytes, maybe not UTF-8),
// []byte (bin), Ext, []any, Map (ordered; keys of any of these types) and,
// when encoding, also int, int32, float32, map[string]any (sorted keys).

package llmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// NestingMax is the deepest a message may nest containers, the outer map included.
const NestingMax = 32

// KV is one entry of a Map.
type KV struct {
	Key   any
	Value any
}

// Map is a msgpack map with its entries in order (duplicates kept as given).
type Map []KV

// Get returns the last value of key and whether it is there.
func (m Map) Get(key string) (any, bool) {
	for i := len(m) - 1; i >= 0; i-- {
		if k, ok := m[i].Key.(string); ok && k == key {
			return m[i].Value, true
		}
	}
	return nil, false
}

// MarshalJSON writes the map as a JSON object in its order (string keys only).
func (m Map) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range m {
		k, ok := kv.Key.(string)
		if !ok {
			return nil, fmt.Errorf("llmq: a map key %v has no JSON form", kv.Key)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k)
		val, err := json.Marshal(kv.Value)
		if err != nil {
			return nil, err
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Ext is a msgpack extension value.
type Ext struct {
	Type int8
	Data []byte
}

// errWire: the bytes are not one complete msgpack value nested at most NestingMax deep.
var errWire = errors.New("not one complete msgpack value")

type reader struct {
	r *bytes.Reader
	d *msgpack.Decoder
}

// readMessage decodes exactly one msgpack value from data, nothing after it.
func readMessage(data []byte) (any, error) {
	br := bytes.NewReader(data)
	rd := reader{r: br, d: msgpack.NewDecoder(br)}
	v, err := rd.value(0)
	if err != nil {
		return nil, err
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing byte(s)", errWire, br.Len())
	}
	return v, nil
}

func cut(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: cut short (%v)", errWire, err)
}

func (rd reader) value(depth int) (any, error) {
	c, err := rd.d.PeekCode()
	if err != nil {
		return nil, cut(err)
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		return rd.mapValue(depth)
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		return rd.array(depth)
	case msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32:
		s, err := rd.d.DecodeString()
		return s, cut(err)
	case c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32:
		b, err := rd.d.DecodeBytes()
		return b, cut(err)
	case msgpcode.IsExt(c):
		return rd.ext()
	case c == msgpcode.Nil:
		return nil, cut(rd.d.DecodeNil())
	case c == msgpcode.False || c == msgpcode.True:
		b, err := rd.d.DecodeBool()
		return b, cut(err)
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := rd.d.DecodeFloat64()
		return f, cut(err)
	case c == msgpcode.Uint64:
		u, err := rd.d.DecodeUint64()
		if err == nil && u <= math.MaxInt64 {
			return int64(u), nil
		}
		return u, cut(err)
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		i, err := rd.d.DecodeInt64()
		return i, cut(err)
	}
	return nil, fmt.Errorf("%w: byte 0x%02x is never used", errWire, c)
}

// count checks a container's length against the bytes left (one at least per item).
func (rd reader) count(n int, perItem int, depth int) error {
	if depth >= NestingMax {
		return fmt.Errorf("%w: nested over %d deep", errWire, NestingMax)
	}
	if n < 0 || n*perItem > rd.r.Len() {
		return fmt.Errorf("%w: cut short", errWire)
	}
	return nil
}

func (rd reader) mapValue(depth int) (any, error) {
	n, err := rd.d.DecodeMapLen()
	if err != nil {
		return nil, cut(err)
	}
	if err := rd.count(n, 2, depth); err != nil {
		return nil, err
	}
	m := make(Map, 0, n)
	for i := 0; i < n; i++ {
		k, err := rd.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := rd.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m = append(m, KV{k, v})
	}
	return m, nil
}

func (rd reader) array(depth int) (any, error) {
	n, err := rd.d.DecodeArrayLen()
	if err != nil {
		return nil, cut(err)
	}
	if err := rd.count(n, 1, depth); err != nil {
		return nil, err
	}
	a := make([]any, 0, n)
	for i := 0; i < n; i++ {
		v, err := rd.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	return a, nil
}

func (rd reader) ext() (any, error) {
	typ, n, err := rd.d.DecodeExtHeader()
	if err != nil {
		return nil, cut(err)
	}
	if n > rd.r.Len() {
		return nil, fmt.Errorf("%w: cut short", errWire)
	}
	data := make([]byte, n)
	if err := rd.d.ReadFull(data); err != nil {
		return nil, cut(err)
	}
	return Ext{Type: typ, Data: data}, nil
}

// writeValue encodes v: ints in their smallest form, floats as float64, str
// for string, bin for []byte, Map in its order, map[string]any by sorted key.
func writeValue(e *msgpack.Encoder, v any) error {
	switch x := v.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(x)
	case int:
		return e.EncodeInt(int64(x))
	case int32:
		return e.EncodeInt(int64(x))
	case int64:
		return e.EncodeInt(x)
	case uint64:
		return e.EncodeUint(x)
	case float32:
		return e.EncodeFloat64(float64(x))
	case float64:
		return e.EncodeFloat64(x)
	case string:
		return e.EncodeString(x)
	case []byte:
		return e.EncodeBytes(x)
	case Ext:
		if err := e.EncodeExtHeader(x.Type, len(x.Data)); err != nil {
			return err
		}
		_, err := e.Writer().Write(x.Data)
		return err
	case []string:
		return writeArray(e, len(x), func(i int) any { return x[i] })
	case []any:
		return writeArray(e, len(x), func(i int) any { return x[i] })
	case Map:
		return writeMap(e, x)
	case map[string]any:
		return writeMap(e, sortedMap(x))
	}
	return fmt.Errorf("llmq: a %T has no msgpack form here", v)
}

func writeArray(e *msgpack.Encoder, n int, item func(int) any) error {
	if err := e.EncodeArrayLen(n); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := writeValue(e, item(i)); err != nil {
			return err
		}
	}
	return nil
}

func writeMap(e *msgpack.Encoder, m Map) error {
	if err := e.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for _, kv := range m {
		if err := writeValue(e, kv.Key); err != nil {
			return err
		}
		if err := writeValue(e, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func sortedMap(m map[string]any) Map {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(Map, 0, len(m))
	for _, k := range keys {
		out = append(out, KV{k, m[k]})
	}
	return out
}

// encodeValue returns the msgpack bytes of v (see writeValue).
func encodeValue(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeValue(msgpack.NewEncoder(&b), v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// normalize turns the encoding-only forms (int, int32, float32, []string,
// map[string]any) into the decoded forms, so validation sees one shape.
// Over NestingMax deep (or cyclic through maps) fails.
func normalize(v any, depth int) (any, error) {
	switch v.(type) {
	case []any, []string, Map, map[string]any:
		if depth >= NestingMax {
			return nil, fmt.Errorf("%w: nested over %d deep", errWire, NestingMax)
		}
	}
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return a, nil
	case map[string]any:
		return normalize(sortedMap(x), depth)
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			n, err := normalize(item, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case Map:
		out := make(Map, len(x))
		for i, kv := range x {
			k, err := normalize(kv.Key, depth+1)
			if err != nil {
				return nil, err
			}
			val, err := normalize(kv.Value, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = KV{k, val}
		}
		return out, nil
	case nil, bool, int64, uint64, float64, string, []byte, Ext:
		return v, nil
	}
	return nil, fmt.Errorf("llmq: a %T has no msgpack form here", v)
}
