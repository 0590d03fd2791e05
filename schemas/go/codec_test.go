// codec_test.go — the Go codec against every vector in schemas/vectors:
// valid jobs encode to the committed bytes (from their JSON meaning and from
// the decoded Job), every job file gets index.json's verdict (from its bytes
// and from its JSON meaning), and every reply file decodes to its meaning or
// is refused.
package llmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type vector struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Valid        bool     `json:"valid"`
	File         string   `json:"file"`
	JSON         string   `json:"json"`
	ExpectedCode string   `json:"expected_code"`
	Stage        string   `json:"stage"`
	Field        string   `json:"field"`
	Requires     []string `json:"requires"`
}

// implemented are the features of index.json's additions this library
// implements: all of them (TestEveryVectorIsCovered fails on a new one).
var implemented = map[string]bool{"cancel": true, "partial_text": true, "reply_routing": true,
	"utf8_cut": true, "prompt_bytes_roles": true, "logprobs": true, "lora": true, "chunk_ms": true}

const vectorsDir = "../vectors"

// float32Vectors were written with a float32 on purpose; this library writes float64.
var float32Vectors = map[string]bool{"job_ok_float32": true}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Vectors, Additions []vector
		Features           map[string]any
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	skipped := map[string]int{}
	out := index.Vectors
	for _, v := range index.Additions {
		ok := true
		for _, f := range v.Requires {
			if !implemented[f] {
				ok = false
				skipped[f]++
			}
		}
		if ok {
			out = append(out, v)
		}
	}
	t.Logf("additions: %d judged, skipped by missing feature: %v", len(out)-len(index.Vectors), skipped)
	for f := range index.Features {
		if !implemented[f] {
			t.Errorf("index.json feature %q: not implemented by this library", f)
		}
	}
	if len(skipped) > 0 {
		t.Errorf("additions skipped: %v", skipped)
	}
	return out
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// orderedJSON decodes JSON keeping object order (as Map) and int versus
// float (a number with '.', 'e' or 'E' is a float64, else an int64).
func orderedJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := tok.(type) {
	case json.Delim:
		if x == '[' {
			a := []any{}
			for dec.More() {
				v, err := jsonValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		m := Map{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := jsonValue(dec)
			if err != nil {
				return nil, err
			}
			m = append(m, KV{k.(string), v})
		}
		_, err := dec.Token()
		return m, err
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return x.Float64()
		}
		return x.Int64()
	}
	return tok, nil
}

func TestEveryVectorIsCovered(t *testing.T) {
	kinds := map[string]int{}
	valid := 0
	for _, v := range loadVectors(t) {
		kinds[v.Kind]++
		if v.Kind == "job" && v.Valid {
			valid++
		}
	}
	if len(kinds) != 6 || valid < 15 {
		t.Fatalf("kinds %v, %d valid jobs", kinds, valid)
	}
}

func TestValidJobsEncodeToVectorBytes(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Kind != "job" || !v.Valid || float32Vectors[v.Name] {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			want := readVector(t, v.File)
			job, err := DecodeJob(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeJob(job)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Job round trip: %v\n got %x\nwant %x", err, got, want)
			}
			if v.JSON == "" {
				return
			}
			meaning := orderedJSON(t, readVector(t, v.JSON)).(Map)
			reversed := make(Map, len(meaning))
			for i, kv := range meaning {
				reversed[len(meaning)-1-i] = kv
			}
			if isJobField(reversed[0].Key.(string)) { // unknown fields keep their own order
				got, err = EncodeJobMap(reversed)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("from JSON: %v\n got %x\nwant %x", err, got, want)
				}
			}
		})
	}
}

func TestFloat32JobReencodesAsFloat64(t *testing.T) {
	data := readVector(t, "job_ok_float32.msgpack")
	job, err := DecodeJob(data)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := EncodeJob(job)
	if bytes.Equal(out, data) || !bytes.Contains(out, []byte{0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("got %x", out)
	}
}

func checkVerdict(t *testing.T, v vector, err error) {
	t.Helper()
	if v.Valid || v.Stage == "admit" {
		if err != nil {
			t.Fatalf("want no verdict, got %v", err)
		}
		return
	}
	var inv *InvalidJob
	if !errors.As(err, &inv) {
		t.Fatalf("want InvalidJob %s, got %v", v.ExpectedCode, err)
	}
	if inv.Code != v.ExpectedCode || (v.Field != "" && (inv.Field != v.Field || !strings.HasPrefix(inv.Message, v.Field))) {
		t.Fatalf("want %s/%s, got %s/%s: %s", v.ExpectedCode, v.Field, inv.Code, inv.Field, inv.Message)
	}
}

func TestJobVerdicts(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Kind != "job" {
			continue
		}
		t.Run("bytes/"+v.Name, func(t *testing.T) {
			_, err := DecodeJob(readVector(t, v.File))
			checkVerdict(t, v, err)
		})
		if v.JSON != "" {
			t.Run("json/"+v.Name, func(t *testing.T) {
				meaning := orderedJSON(t, readVector(t, v.JSON))
				var err error
				if m, ok := meaning.(Map); ok {
					_, err = EncodeJobMap(m)
				} else {
					err = validate(meaning) // not a map: no Map to encode
				}
				checkVerdict(t, v, err)
			})
		}
	}
}

func TestCancels(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Kind != "cancel" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			data := readVector(t, v.File)
			c, err := DecodeCancel(data)
			if !v.Valid {
				var inv *InvalidReply
				if !errors.As(err, &inv) {
					t.Fatalf("want InvalidReply, got %v %+v", err, c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out, err := EncodeCancel(*c); err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%v\n got %x\nwant %x", err, out, data)
			}
		})
	}
	if _, err := EncodeCancel(Cancel{ID: strings.Repeat("x", IDMaxBytes+1)}); err == nil {
		t.Fatal("a 129-byte id was accepted")
	}
}

func TestReplies(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Kind == "job" || v.Kind == "cancel" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			reply, err := DecodeReply(readVector(t, v.File))
			if !v.Valid {
				var inv *InvalidReply
				if !errors.As(err, &inv) {
					t.Fatalf("want InvalidReply, got %v %+v", err, reply)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.JSON == "" { // bin tokens: no JSON meaning
				checkSplitTokens(t, reply)
				return
			}
			var want, got map[string]any
			_ = json.Unmarshal(readVector(t, v.JSON), &want)
			delete(want, "v")
			data, err := json.Marshal(reply)
			if err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(data, &got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %s\nwant %v", data, want)
			}
		})
	}
}

// checkSplitTokens: a chunk whose tokens are bins joins them, as bytes, to its text.
func checkSplitTokens(t *testing.T, reply Reply) {
	t.Helper()
	c, ok := reply.(*Chunk)
	if !ok || len(c.Logprobs) == 0 {
		t.Fatalf("want a chunk with logprobs, got %+v", reply)
	}
	var joined string
	for _, e := range c.Logprobs {
		joined += e.Token
		if len(e.Top) == 0 || e.Logprob > 0 {
			t.Fatalf("entry %+v", e)
		}
	}
	if joined != c.Text {
		t.Fatalf("tokens join to %q, text is %q", joined, c.Text)
	}
}
