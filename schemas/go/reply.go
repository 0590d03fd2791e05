// reply.go — the messages workers write (schemas/spec.md, "Replies" and
// "Heartbeat") and the cancel message producers write on the control topic.
//
// DecodeReply reads a chunk, done, error or heartbeat, checking each field's
// type; unknown fields are ignored (evolution rule). EncodeCancel writes a
// cancel message.

package llmq

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
)

// RetryableCodes are the error codes whose replies say retryable = true;
// the other codes in KnownCodes say false.
var RetryableCodes = map[string]bool{"model_mismatch": true, "backend_error": true,
	"backend_failed": true, "internal": true}

// KnownCodes are the error codes of the spec's code table.
var KnownCodes = map[string]bool{"malformed": true, "unsupported_version": true,
	"invalid_id": true, "invalid_field": true, "invalid_input": true, "prompt_too_large": true,
	"reply_to_denied": true, "expired": true, "model_mismatch": true, "context_exceeded": true,
	"backend_error": true, "backend_failed": true, "internal": true, "cancelled": true}

// partialTextCodes are the known codes whose errors may carry partial_text.
var partialTextCodes = map[string]bool{"expired": true, "cancelled": true}

var codeRE = regexp.MustCompile(`^[a-z][a-z_]*$`)

// Reply is a decoded *Chunk, *Done, *Error or *Heartbeat.
type Reply interface{ replyType() string }

// Chunk is a piece of output of one run of a job. Logprobs, when the job
// asked for them, are the entries of the tokens since the previous chunk
// (nil when absent; empty when the chunk carries no token).
type Chunk struct {
	Type     string         `json:"type"`
	ID       string         `json:"id"`
	Run      string         `json:"run"`
	Seq      int64          `json:"seq"`
	Text     string         `json:"text"`
	Logprobs []TokenLogprob `json:"logprobs,omitempty"`
}

// TokenLogprob is one generated token (schemas/spec.md, "Log-probabilities"):
// Token holds its bytes (sent as a msgpack bin when they are not UTF-8 on
// their own: a character split over two tokens), Logprob the natural log of
// the probability the model gave it (<= 0; float32 on the wire), Top the most
// likely tokens at its place, most likely first. Its JSON form is the wire's
// compact [token, logprob, [[token, logprob], ...]].
type TokenLogprob struct {
	Token   string
	Logprob float64
	Top     []TopLogprob
}

// TopLogprob is one alternative at a token's place; JSON: [token, logprob].
type TopLogprob struct {
	Token   string
	Logprob float64
}

// MarshalJSON writes the compact array form.
func (t TokenLogprob) MarshalJSON() ([]byte, error) {
	top := t.Top
	if top == nil {
		top = []TopLogprob{}
	}
	return json.Marshal([]any{t.Token, t.Logprob, top})
}

// MarshalJSON writes the compact array form.
func (t TopLogprob) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{t.Token, t.Logprob})
}

// Usage counts a job's tokens.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Timings are milliseconds, and tokens per second; QueueMs counts from the
// job's Kafka timestamp, so the producer's clock skew shows in it.
type Timings struct {
	QueueMs    float64 `json:"queue_ms"`
	TTFTMs     float64 `json:"ttft_ms"`
	GenMs      float64 `json:"gen_ms"`
	TokensPerS float64 `json:"tokens_per_s"`
}

// Done is the terminal reply of a job that generated: Text is the whole output of Run.
type Done struct {
	Type    string  `json:"type"`
	ID      string  `json:"id"`
	Run     string  `json:"run"`
	Text    string  `json:"text"`
	Finish  string  `json:"finish"`
	Usage   Usage   `json:"usage"`
	Timings Timings `json:"timings"`
	Worker  string  `json:"worker"`
	Meta    Map     `json:"meta,omitempty"`
	// Logprobs: one entry per generated token of the run, when the job asked
	// for them (nil when absent: not asked for, or too large for the broker).
	Logprobs []TokenLogprob `json:"logprobs,omitempty"`
}

// Error is the terminal reply of a job that failed or was rejected. ID is
// "" when the job's id could not be read; Run is "" when it never ran.
type Error struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Run       string `json:"run"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	Worker    string `json:"worker"`
	// PartialText is the text the run generated before it was stopped
	// (expired or cancelled while generating); nil when absent.
	PartialText *string `json:"partial_text,omitempty"`
	Meta        Map     `json:"meta,omitempty"`
}

// Gpu is a GPU reading; nil for what the backend cannot read.
type Gpu struct {
	Backend        string   `json:"backend"`
	Name           *string  `json:"name"`
	VramTotalBytes *int64   `json:"vram_total_bytes"`
	VramUsedBytes  *int64   `json:"vram_used_bytes"`
	TempEdgeC      *float64 `json:"temp_edge_c"`
	TempJunctionC  *float64 `json:"temp_junction_c"`
	TempMemC       *float64 `json:"temp_mem_c"`
	PowerW         *float64 `json:"power_w"`
	BusyPercent    *float64 `json:"busy_percent"`
}

// Counters are a worker's totals since it started.
type Counters struct {
	JobsDone   int64 `json:"jobs_done"`
	JobsFailed int64 `json:"jobs_failed"`
	Tokens     int64 `json:"tokens"`
}

// Heartbeat is a worker's periodic status, from the metrics topic.
type Heartbeat struct {
	Type       string   `json:"type"`
	Worker     string   `json:"worker"`
	Host       string   `json:"host"`
	Model      string   `json:"model"`
	State      string   `json:"state"`
	TsMs       int64    `json:"ts_ms"`
	Gpu        Gpu      `json:"gpu"`
	SlotsBusy  int64    `json:"slots_busy"`
	SlotsTotal int64    `json:"slots_total"`
	Counters   Counters `json:"counters"`
}

func (*Chunk) replyType() string     { return "chunk" }
func (*Done) replyType() string      { return "done" }
func (*Error) replyType() string     { return "error" }
func (*Heartbeat) replyType() string { return "heartbeat" }

// fieldReader reads typed fields of one reply map; the first failure sticks
// and names the message type and field.
type fieldReader struct {
	f     fields
	where string
	err   error
}

func (r *fieldReader) fail(name, what string, present bool) {
	if r.err != nil {
		return
	}
	if !present {
		r.err = &InvalidReply{fmt.Sprintf("%s.%s: missing", r.where, name)}
		return
	}
	r.err = &InvalidReply{fmt.Sprintf("%s.%s: must be %s", r.where, name, what)}
}

func (r *fieldReader) text(name string, minBytes, maxBytes int) string {
	v, ok := r.f.values[name]
	s, isStr := v.(string)
	if !isStr || !textOK(s) || len(s) < minBytes || (maxBytes > 0 && len(s) > maxBytes) {
		r.fail(name, "a string of the right length", ok)
	}
	return s
}

func (r *fieldReader) optText(name string) *string {
	v, ok := r.f.values[name]
	if s, isStr := v.(string); isStr && textOK(s) {
		return &s
	}
	if !ok || v != nil {
		r.fail(name, "a string or nil", ok)
	}
	return nil
}

func (r *fieldReader) integer(name string, min int64) int64 {
	p := r.optInteger(name, min, false)
	if p == nil {
		return 0
	}
	return *p
}

func (r *fieldReader) optInteger(name string, min int64, nullable bool) *int64 {
	v, ok := r.f.values[name]
	if i, isInt := v.(int64); isInt && i >= min {
		return &i
	}
	if !(nullable && ok && v == nil) {
		r.fail(name, fmt.Sprintf("an integer >= %d", min), ok)
	}
	return nil
}

// number reads a number within [min, max] (max 0: no maximum); nil when nullable and nil.
func (r *fieldReader) number(name string, min, max float64, nullable bool) *float64 {
	v, ok := r.f.values[name]
	if isNumber(v) && toFloat(v) >= min && (max == 0 || toFloat(v) <= max) {
		f := toFloat(v)
		return &f
	}
	if !(nullable && ok && v == nil) {
		r.fail(name, "a number in range", ok)
	}
	return nil
}

func (r *fieldReader) num(name string, min float64) float64 {
	if p := r.number(name, min, 0, false); p != nil {
		return *p
	}
	return 0
}

func (r *fieldReader) sub(name string) *fieldReader {
	v, ok := r.f.values[name]
	m, isMap := v.(Map)
	if !isMap {
		r.fail(name, "a map", ok)
	}
	return &fieldReader{f: index(m), where: r.where + "." + name, err: r.err}
}

func (r *fieldReader) meta() Map {
	v, ok := r.f.values["meta"]
	m, isMap := v.(Map)
	if ok && !isMap {
		r.fail("meta", "a map", true)
	}
	return m
}

// logprobs reads the optional compact logprobs array; nil when absent.
func (r *fieldReader) logprobs() []TokenLogprob {
	v, ok := r.f.values["logprobs"]
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	out := make([]TokenLogprob, 0, len(list))
	for _, item := range list {
		entry, good := item.([]any)
		if good = good && len(entry) == 3; good {
			var e TokenLogprob
			e.Token, e.Logprob, good = tokenAndLogprob(entry[0], entry[1])
			e.Top, good = topLogprobs(entry[2], good)
			out = append(out, e)
		}
		if !good {
			isList = false
			break
		}
	}
	if !isList {
		r.fail("logprobs", "an array of [token, logprob <= 0, [[token, logprob], ...]]", true)
		return nil
	}
	return out
}

func topLogprobs(v any, good bool) ([]TopLogprob, bool) {
	list, isList := v.([]any)
	if !good || !isList {
		return nil, false
	}
	out := make([]TopLogprob, 0, len(list))
	for _, item := range list {
		pair, isPair := item.([]any)
		if !isPair || len(pair) != 2 {
			return nil, false
		}
		token, logprob, ok := tokenAndLogprob(pair[0], pair[1])
		if !ok {
			return nil, false
		}
		out = append(out, TopLogprob{token, logprob})
	}
	return out, true
}

// tokenAndLogprob: a token (UTF-8 str, or bin) and a number <= 0.
func tokenAndLogprob(token, logprob any) (string, float64, bool) {
	var t string
	switch x := token.(type) {
	case string:
		if !textOK(x) {
			return "", 0, false
		}
		t = x
	case []byte:
		t = string(x)
	default:
		return "", 0, false
	}
	if !isNumber(logprob) || toFloat(logprob) > 0 {
		return "", 0, false
	}
	return t, toFloat(logprob), true
}

func (r *fieldReader) merge(subs ...*fieldReader) error {
	for _, s := range subs {
		if r.err == nil {
			r.err = s.err
		}
	}
	return r.err
}

// anyNumber is the minimum of a number without one.
var anyNumber = math.Inf(-1)

func readChunk(r *fieldReader) (Reply, error) {
	c := &Chunk{Type: "chunk", ID: r.text("id", 1, IDMaxBytes), Run: r.text("run", 1, 0),
		Seq: r.integer("seq", 0), Text: r.text("text", 0, 0), Logprobs: r.logprobs()}
	return c, r.err
}

func readDone(r *fieldReader) (Reply, error) {
	u, t := r.sub("usage"), r.sub("timings")
	d := &Done{Type: "done", ID: r.text("id", 1, IDMaxBytes), Run: r.text("run", 1, 0),
		Text: r.text("text", 0, 0), Finish: r.text("finish", 1, 0),
		Usage: Usage{PromptTokens: u.integer("prompt_tokens", 0),
			CompletionTokens: u.integer("completion_tokens", 0)},
		Timings: Timings{QueueMs: t.num("queue_ms", anyNumber), TTFTMs: t.num("ttft_ms", 0),
			GenMs: t.num("gen_ms", 0), TokensPerS: t.num("tokens_per_s", 0)},
		Worker: r.text("worker", 0, 0), Meta: r.meta(), Logprobs: r.logprobs()}
	return d, r.merge(u, t)
}

func readError(r *fieldReader) (Reply, error) {
	code, _ := r.f.values["code"].(string)
	if !codeRE.MatchString(code) {
		r.fail("code", "a code name ([a-z][a-z_]*)", r.f.values["code"] != nil)
	}
	retryable, isBool := r.f.values["retryable"].(bool)
	if !isBool {
		r.fail("retryable", "a boolean", r.f.values["retryable"] != nil)
	}
	if r.err == nil && KnownCodes[code] && retryable != RetryableCodes[code] {
		r.err = &InvalidReply{fmt.Sprintf("error.retryable: must be %v for code %s", RetryableCodes[code], code)}
	}
	e := &Error{Type: "error", ID: r.text("id", 0, IDMaxBytes), Run: r.text("run", 0, 0),
		Code: code, Message: r.text("message", 0, 0), Retryable: retryable,
		Worker: r.text("worker", 0, 0), Meta: r.meta()}
	if _, ok := r.f.values["partial_text"]; ok {
		e.PartialText = Ptr(r.text("partial_text", 0, 0))
		if r.err == nil && (e.Run == "" || (KnownCodes[code] && !partialTextCodes[code])) {
			r.err = &InvalidReply{"error.partial_text: only for a job that was generating, and of the known codes only expired and cancelled"}
		}
	}
	return e, r.err
}

func readHeartbeat(r *fieldReader) (Reply, error) {
	g, c := r.sub("gpu"), r.sub("counters")
	h := &Heartbeat{Type: "heartbeat", Worker: r.text("worker", 1, 0), Host: r.text("host", 0, 0),
		Model: r.text("model", 0, 0), State: r.text("state", 1, 0), TsMs: r.integer("ts_ms", 0),
		Gpu: Gpu{Backend: g.text("backend", 1, 0), Name: g.optText("name"),
			VramTotalBytes: g.optInteger("vram_total_bytes", 0, true),
			VramUsedBytes:  g.optInteger("vram_used_bytes", 0, true),
			TempEdgeC:      g.number("temp_edge_c", anyNumber, 0, true),
			TempJunctionC:  g.number("temp_junction_c", anyNumber, 0, true),
			TempMemC:       g.number("temp_mem_c", anyNumber, 0, true),
			PowerW:         g.number("power_w", 0, 0, true),
			BusyPercent:    g.number("busy_percent", 0, 100, true)},
		SlotsBusy: r.integer("slots_busy", 0), SlotsTotal: r.integer("slots_total", 1),
		Counters: Counters{JobsDone: c.integer("jobs_done", 0), JobsFailed: c.integer("jobs_failed", 0),
			Tokens: c.integer("tokens", 0)}}
	return h, r.merge(g, c)
}

var replyReaders = map[string]func(*fieldReader) (Reply, error){
	"chunk": readChunk, "done": readDone, "error": readError, "heartbeat": readHeartbeat}

// DecodeReply decodes a chunk, done, error or heartbeat (*Chunk, *Done,
// *Error, *Heartbeat), or returns an *InvalidReply when the bytes are not
// such a v1 message. Numbers read as float64 whether sent as int or float.
func DecodeReply(data []byte) (Reply, error) {
	root, err := readMessage(data)
	if err != nil {
		return nil, &InvalidReply{err.Error()}
	}
	m, ok := root.(Map)
	if !ok {
		return nil, &InvalidReply{"a reply must be a msgpack map"}
	}
	f := index(m)
	v, ok := f.values["v"]
	if !ok {
		return nil, &InvalidReply{"v: missing"}
	}
	if i, isInt := v.(int64); !isInt || i != Version {
		return nil, &InvalidReply{fmt.Sprintf("v: must be the integer %d", Version)}
	}
	typ, _ := f.values["type"].(string)
	read, ok := replyReaders[typ]
	if !ok {
		return nil, &InvalidReply{fmt.Sprintf("type: not a v1 reply type: %q", typ)}
	}
	return read(&fieldReader{f: f, where: typ})
}

// Cancel asks the workers to stop a job (schemas/spec.md, "Cancellation"):
// Run, when not "", names the only run to stop; Reason is for people; Extra
// holds fields this version does not know, sent after the known ones.
type Cancel struct {
	ID     string
	Run    string
	Reason string
	Extra  Map
}

// checkCancel returns an *InvalidJob naming the field a worker would refuse.
func checkCancel(c Cancel) error {
	if p := textProblem(c.ID, true); p != "" {
		return &InvalidJob{Code: "invalid_id", Field: "id", Message: "id: " + p}
	}
	if len(c.ID) > IDMaxBytes {
		return &InvalidJob{Code: "invalid_id", Field: "id", Message: fmt.Sprintf("id: must be at most %d bytes", IDMaxBytes)}
	}
	for _, kv := range []KV{{"run", c.Run}, {"reason", c.Reason}} {
		if !textOK(kv.Value.(string)) {
			return &InvalidJob{Code: "invalid_field", Field: kv.Key.(string),
				Message: kv.Key.(string) + ": must be valid UTF-8 without NUL bytes"}
		}
	}
	return nil
}

// EncodeCancel returns the msgpack bytes of a cancel message: v, type, id,
// then run and reason when not "", then Extra.
func EncodeCancel(c Cancel) ([]byte, error) {
	if err := checkCancel(c); err != nil {
		return nil, err
	}
	m := Map{{"v", int64(Version)}, {"type", "cancel"}, {"id", c.ID}}
	for _, kv := range []KV{{"run", c.Run}, {"reason", c.Reason}} {
		if kv.Value.(string) != "" {
			m = append(m, kv)
		}
	}
	return encodeValue(append(m, c.Extra...))
}

// DecodeCancel reads a cancel message as a worker does; an *InvalidReply
// says why a worker would ignore it.
func DecodeCancel(data []byte) (*Cancel, error) {
	root, err := readMessage(data)
	if err != nil {
		return nil, &InvalidReply{err.Error()}
	}
	m, ok := root.(Map)
	if !ok {
		return nil, &InvalidReply{"a cancel must be a msgpack map"}
	}
	f := index(m)
	if v, isInt := f.values["v"].(int64); !isInt || v != Version {
		return nil, &InvalidReply{fmt.Sprintf("v: must be the integer %d", Version)}
	}
	if t, _ := f.values["type"].(string); t != "cancel" {
		return nil, &InvalidReply{"type: not a v1 control message type"}
	}
	r := &fieldReader{f: f, where: "cancel"}
	c := &Cancel{ID: r.text("id", 1, IDMaxBytes)}
	if _, ok := f.values["run"]; ok {
		c.Run = r.text("run", 1, 0)
	}
	if _, ok := f.values["reason"]; ok {
		c.Reason = r.text("reason", 0, 0)
	}
	for _, kv := range m {
		if k, _ := kv.Key.(string); k != "v" && k != "type" && k != "id" && k != "run" && k != "reason" {
			c.Extra = append(c.Extra, kv)
		}
	}
	return c, r.err
}
