// steering_test.go — the steering job fields (logprobs, lora, chunk_ms) as
// Job fields, logprobs in replies, partial_text on JobError, and lane
// selection, without Kafka.
package llmq

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestSteeringFieldsEncodeInTableOrder(t *testing.T) {
	job := Job{ID: "j-1", Prompt: "a", Meta: Map{{"k", "v"}}, Logprobs: Ptr[int64](5),
		Lora:    []Lora{{Name: "style", Scale: Ptr(0.5)}, {Name: "tiny-lora", Extra: Map{{"note", "x"}}}},
		ChunkMs: Ptr[int64](0), Extra: Map{{"priority", int64(3)}}}
	data, err := EncodeJob(&job)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Logprobs int64 `msgpack:"logprobs"`
		ChunkMs  int64 `msgpack:"chunk_ms"`
	}
	if err := msgpack.Unmarshal(data, &got); err != nil || got.Logprobs != 5 || got.ChunkMs != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	// Keys in table order: ... meta, logprobs, lora, chunk_ms, then unknown fields.
	order := []string{"meta", "logprobs", "lora", "chunk_ms", "priority"}
	last := -1
	for _, k := range order {
		i := bytes.Index(data, append([]byte{byte(0xa0 | len(k))}, k...))
		if i <= last {
			t.Fatalf("%s out of order in %x", k, data)
		}
		last = i
	}
	back, err := DecodeJob(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeJob(back)
	if !bytes.Equal(again, data) || *back.Lora[0].Scale != 0.5 || back.Lora[1].Scale != nil {
		t.Fatalf("round trip: %+v", back.Lora)
	}
}

func TestSteeringFieldsAreValidated(t *testing.T) {
	for _, c := range []struct {
		job   Job
		field string
	}{
		{Job{ID: "j", Logprobs: Ptr[int64](21)}, "logprobs"},
		{Job{ID: "j", ChunkMs: Ptr[int64](-1)}, "chunk_ms"},
		{Job{ID: "j", Lora: []Lora{{Name: ""}}}, "lora"},
		{Job{ID: "j", Lora: []Lora{{Name: "a"}, {Name: "a"}}}, "lora"},
		{Job{ID: "j", Lora: make([]Lora, LoraMax+1)}, "lora"},
	} {
		var inv *InvalidJob
		if err := ValidateJob(&c.job); !errors.As(err, &inv) || inv.Code != "invalid_field" || inv.Field != c.field {
			t.Errorf("%+v: got %v", c.job, err)
		}
	}
	float32Scale := Map{{"v", int64(1)}, {"id", "j"}, {"prompt", ""}, {"lora", []any{Map{{"name", "a"}, {"scale", float32(0)}}}}}
	if err := ValidateMap(float32Scale); err != nil {
		t.Errorf("a float32 scale: %v", err)
	}
	empty := Job{ID: "j", Lora: []Lora{}}
	if data, err := EncodeJob(&empty); err != nil || !bytes.Contains(data, []byte("\xa4lora\x90")) {
		t.Errorf("an empty lora list is sent as []: %x %v", data, err)
	}
}

func TestPartialTextOnJobError(t *testing.T) {
	data, _ := encodeValue(Map{{"v", int64(1)}, {"type", "error"}, {"id", "j"}, {"run", "w1-1"},
		{"code", "cancelled"}, {"message", "cancelled: enough"}, {"retryable", false},
		{"worker", "w"}, {"partial_text", "Once"}})
	reply, err := DecodeReply(data)
	if err != nil {
		t.Fatal(err)
	}
	je := newJobError(reply.(*Error))
	if je.PartialText == nil || *je.PartialText != "Once" || !errors.Is(je, ErrCancelled) {
		t.Fatalf("%+v", je)
	}
	data, _ = encodeValue(Map{{"v", int64(1)}, {"type", "error"}, {"id", "j"}, {"run", "r"},
		{"code", "future_code"}, {"message", "m"}, {"retryable", true}, {"worker", "w"},
		{"partial_text", "so far"}})
	if _, err := DecodeReply(data); err != nil {
		t.Fatalf("a future code may carry partial_text: %v", err)
	}
}

func TestLogprobsDecodeAndSum(t *testing.T) {
	sum := func(name string) (float64, string) {
		r, err := DecodeReply(readVector(t, name))
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		var lps []TokenLogprob
		var text string
		switch x := r.(type) {
		case *Chunk:
			lps, text = x.Logprobs, x.Text
		case *Done:
			lps, text = x.Logprobs, x.Text
		}
		for _, e := range lps {
			s += e.Logprob
		}
		return s, text
	}
	a, ta := sum("chunk_logprobs.msgpack")
	b, tb := sum("chunk_logprobs_last.msgpack")
	d, td := sum("done_logprobs.msgpack")
	if a+b != d || ta+tb != td {
		t.Fatalf("chunks %v + %v (%q) != done %v (%q)", a, b, ta+tb, d, td)
	}
	bad, _ := encodeValue(Map{{"v", int64(1)}, {"type", "chunk"}, {"id", "j"}, {"run", "r"},
		{"seq", int64(0)}, {"text", "a"}, {"logprobs", []any{[]any{"a", -0.5, []any{[]any{"a"}}}}}})
	if _, err := DecodeReply(bad); err == nil || !strings.Contains(err.Error(), "logprobs") {
		t.Fatalf("a top entry without its logprob: %v", err)
	}
}

func TestLaneSelectsTheJobsTopic(t *testing.T) {
	c := &Client{opts: Options{JobsTopic: "llmq.jobs", ReplyTopic: "r",
		Lanes: map[string]string{"urgent": "llmq.jobs.urgent", "batch": "llmq.jobs.batch"}}}
	for _, tc := range []struct {
		opts []SendOption
		want string
	}{{nil, "llmq.jobs"}, {[]SendOption{Lane("urgent")}, "llmq.jobs.urgent"},
		{[]SendOption{Lane("batch")}, "llmq.jobs.batch"}} {
		topic, err := c.jobsTopic(tc.opts)
		if err != nil || topic != tc.want {
			t.Fatalf("got %q %v, want %q", topic, err, tc.want)
		}
		rec, err := c.prepare(context.Background(), Job{Prompt: "a"}, topic)
		if err != nil || rec.Topic != tc.want || bytes.Contains(rec.Value, []byte("lane")) {
			t.Fatalf("record %+v %v", rec, err)
		}
	}
	if _, err := c.jobsTopic([]SendOption{Lane("vip")}); err == nil || !strings.Contains(err.Error(), `lane "vip"`) {
		t.Fatalf("an unknown lane: %v", err)
	}
	if _, err := c.SubmitMany(context.Background(), []Job{{Prompt: "a"}}, Lane("vip")); err == nil {
		t.Fatal("SubmitMany sent to an unknown lane")
	}
}
