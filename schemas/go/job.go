// job.go — v1 jobs (schemas/spec.md, "Job"): the Job type, the worker's
// decoding verdicts, and the job's msgpack bytes.
//
// EncodeJob validates a Job and returns its bytes: known fields in the order
// of the spec's field table, then Extra in its order, integers in their
// smallest form, floats as float64 (a number field holding an integral
// float64 within 2^53 is sent as an int, which the contract accepts for every
// number field); exactly the bytes of schemas/vectors. DecodeJob and
// ValidateMap give the verdict a worker reaches while decoding (an
// *InvalidJob with the worker's code and field; the first broken rule in
// table order wins). Admission (allowlist, prompt size, model, deadline)
// needs the worker's policy and clock and is left to the worker.

package llmq

import (
	"errors"
	"math"
	"regexp"
	"unicode/utf8"
)

// Limits of the v1 contract.
const (
	Version    = 1
	IDMaxBytes = 128
	StopMax    = 16
	TopicMax   = 249
	// LogprobsMax is the most alternatives per token a job may ask for.
	LogprobsMax = 20
	// LoraMax is the most LoRA adapters one job may name.
	LoraMax = 16
	// ChunkMsMax is the longest chunk_ms a job may ask for.
	ChunkMsMax = 60000
)

// JobFields are the job fields in the order of the field table in schemas/spec.md.
var JobFields = []string{"v", "id", "prompt", "messages", "max_tokens", "temperature",
	"top_p", "top_k", "min_p", "seed", "repeat_penalty", "stop", "grammar", "json_schema",
	"stream", "reply_to", "deadline_ms", "model", "meta", "logprobs", "lora", "chunk_ms"}

// Message is one chat message; Extra holds keys the worker ignores, kept in order.
type Message struct {
	Role    string
	Content string
	Extra   Map
}

// Lora selects one of the workers' LoRA adapters (llama.lora) by Name, at
// Scale (nil: the worker's default, 1.0); Extra holds keys the worker
// ignores, kept in order. A name the workers did not load is answered
// invalid_field at admission (a producer cannot know the workers' adapters).
type Lora struct {
	Name  string
	Scale *float64
	Extra Map
}

// Job is a v1 job. nil pointers, nil maps and slices and "" strings leave an
// optional field out. Prompt is sent when Messages is nil (an empty prompt is
// valid); give Messages for a chat job. Extra holds fields this version does
// not know, sent after the known ones in their order.
type Job struct {
	ID            string
	Prompt        string
	Messages      []Message
	MaxTokens     *int64
	Temperature   *float64
	TopP          *float64
	TopK          *int64
	MinP          *float64
	Seed          *int64
	RepeatPenalty *float64
	Stop          []string
	Grammar       *string
	JSONSchema    Map
	Stream        *bool
	ReplyTo       string
	DeadlineMs    *int64
	Model         string
	Meta          Map
	// Logprobs (0..20) asks for the log-probabilities of each generated
	// token and that many most likely alternatives (Done.Logprobs, Chunk.Logprobs).
	Logprobs *int64
	// Lora (at most 16, no name twice) selects LoRA adapters; a non-nil
	// empty slice is sent as [] (the base model).
	Lora []Lora
	// ChunkMs (0..60000) is the longest streamed output waits to be merged
	// into one chunk; 0: a chunk per piece llama-server streams.
	ChunkMs *int64
	Extra   Map
}

// Ptr returns a pointer to v, for the optional fields of Job.
func Ptr[T any](v T) *T { return &v }

// number is a number field's wire value: an int when the float is integral.
func number(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
}

// Map returns the job's map, fields in table order.
func (j *Job) Map() Map {
	m := Map{{"v", int64(Version)}, {"id", j.ID}}
	add := func(name string, ok bool, v func() any) {
		if ok {
			m = append(m, KV{name, v()})
		}
	}
	add("prompt", j.Messages == nil || j.Prompt != "", func() any { return j.Prompt })
	add("messages", j.Messages != nil, func() any { return messagesValue(j.Messages) })
	add("max_tokens", j.MaxTokens != nil, func() any { return *j.MaxTokens })
	add("temperature", j.Temperature != nil, func() any { return number(*j.Temperature) })
	add("top_p", j.TopP != nil, func() any { return number(*j.TopP) })
	add("top_k", j.TopK != nil, func() any { return *j.TopK })
	add("min_p", j.MinP != nil, func() any { return number(*j.MinP) })
	add("seed", j.Seed != nil, func() any { return *j.Seed })
	add("repeat_penalty", j.RepeatPenalty != nil, func() any { return number(*j.RepeatPenalty) })
	add("stop", j.Stop != nil, func() any { return j.Stop })
	add("grammar", j.Grammar != nil, func() any { return *j.Grammar })
	add("json_schema", j.JSONSchema != nil, func() any { return j.JSONSchema })
	add("stream", j.Stream != nil, func() any { return *j.Stream })
	add("reply_to", j.ReplyTo != "", func() any { return j.ReplyTo })
	add("deadline_ms", j.DeadlineMs != nil, func() any { return *j.DeadlineMs })
	add("model", j.Model != "", func() any { return j.Model })
	add("meta", j.Meta != nil, func() any { return j.Meta })
	add("logprobs", j.Logprobs != nil, func() any { return *j.Logprobs })
	add("lora", j.Lora != nil, func() any { return loraValue(j.Lora) })
	add("chunk_ms", j.ChunkMs != nil, func() any { return *j.ChunkMs })
	return append(m, j.Extra...)
}

func loraValue(adapters []Lora) []any {
	out := make([]any, len(adapters))
	for i, a := range adapters {
		entry := Map{{"name", a.Name}}
		if a.Scale != nil {
			entry = append(entry, KV{"scale", number(*a.Scale)})
		}
		out[i] = append(entry, a.Extra...)
	}
	return out
}

func loraFromValue(v any) []Lora {
	out := []Lora{}
	for _, item := range v.([]any) {
		entry := item.(Map)
		out = append(out, Lora{Name: str(entry, "name"), Scale: floatField(entry, "scale"),
			Extra: others(entry, "name", "scale")})
	}
	return out
}

func messagesValue(msgs []Message) []any {
	out := make([]any, len(msgs))
	for i, msg := range msgs {
		out[i] = append(Map{{"role", msg.Role}, {"content", msg.Content}}, msg.Extra...)
	}
	return out
}

// EncodeJob returns the msgpack bytes of a job, or an *InvalidJob when a v1
// worker would reject it while decoding it.
func EncodeJob(j *Job) ([]byte, error) {
	return EncodeJobMap(j.Map())
}

// EncodeJobMap is EncodeJob for a job given as a map (keys in any order):
// known fields go in table order, then the others in the map's order.
func EncodeJobMap(m Map) ([]byte, error) {
	n, err := normalize(m, 0)
	if err != nil {
		return nil, malformedValue(err)
	}
	m = n.(Map)
	if err := validate(m); err != nil {
		return nil, err
	}
	ordered := make(Map, 0, len(m))
	for _, name := range JobFields {
		if v, ok := m.Get(name); ok {
			ordered = append(ordered, KV{name, v})
		}
	}
	for _, kv := range m {
		if !isJobField(kv.Key.(string)) { // validate() made every key a string
			ordered = append(ordered, kv)
		}
	}
	return encodeValue(ordered)
}

// ValidateJob returns an *InvalidJob when a v1 worker would reject the job
// while decoding it, else nil.
func ValidateJob(j *Job) error { return ValidateMap(j.Map()) }

// ValidateMap is ValidateJob for a job given as a map.
func ValidateMap(m Map) error {
	n, err := normalize(m, 0)
	if err != nil {
		return malformedValue(err)
	}
	return validate(n)
}

func malformedValue(err error) error {
	if errors.Is(err, errWire) {
		return &InvalidJob{Code: "malformed", Message: "containers " + err.Error()}
	}
	return err
}

func isJobField(name string) bool {
	for _, f := range JobFields {
		if f == name {
			return true
		}
	}
	return false
}

// DecodeJob decodes and validates job bytes as a worker does (admission aside).
func DecodeJob(data []byte) (*Job, error) {
	root, err := readMessage(data)
	if err != nil {
		return nil, &InvalidJob{Code: "malformed", Message: err.Error()}
	}
	if err := validate(root); err != nil {
		return nil, err
	}
	return jobFromMap(root.(Map)), nil
}

func jobFromMap(m Map) *Job {
	j := &Job{ID: str(m, "id")}
	if v, ok := m.Get("prompt"); ok {
		j.Prompt = v.(string)
	}
	if v, ok := m.Get("messages"); ok {
		for _, item := range v.([]any) {
			mm := item.(Map)
			j.Messages = append(j.Messages, Message{Role: str(mm, "role"),
				Content: str(mm, "content"), Extra: others(mm, "role", "content")})
		}
	}
	j.MaxTokens, j.TopK = intField(m, "max_tokens"), intField(m, "top_k")
	j.Seed, j.DeadlineMs = intField(m, "seed"), intField(m, "deadline_ms")
	j.Temperature, j.TopP = floatField(m, "temperature"), floatField(m, "top_p")
	j.MinP, j.RepeatPenalty = floatField(m, "min_p"), floatField(m, "repeat_penalty")
	if v, ok := m.Get("stop"); ok {
		j.Stop = []string{}
		for _, s := range v.([]any) {
			j.Stop = append(j.Stop, s.(string))
		}
	}
	if v, ok := m.Get("grammar"); ok {
		j.Grammar = Ptr(v.(string))
	}
	if v, ok := m.Get("json_schema"); ok {
		j.JSONSchema = v.(Map)
	}
	if v, ok := m.Get("stream"); ok {
		j.Stream = Ptr(v.(bool))
	}
	j.ReplyTo, j.Model = str(m, "reply_to"), str(m, "model")
	if v, ok := m.Get("meta"); ok {
		j.Meta = v.(Map)
	}
	j.Logprobs, j.ChunkMs = intField(m, "logprobs"), intField(m, "chunk_ms")
	if v, ok := m.Get("lora"); ok {
		j.Lora = loraFromValue(v)
	}
	for _, kv := range m {
		if !isJobField(kv.Key.(string)) {
			j.Extra = append(j.Extra, kv)
		}
	}
	return j
}

// others returns the entries of m whose key is neither a nor b, in order (nil when none).
func others(m Map, a, b string) Map {
	var out Map
	for _, kv := range m {
		if k, _ := kv.Key.(string); k != a && k != b {
			out = append(out, kv)
		}
	}
	return out
}

func str(m Map, key string) string {
	v, _ := m.Get(key)
	s, _ := v.(string)
	return s
}

func intField(m Map, key string) *int64 {
	if v, ok := m.Get(key); ok {
		return Ptr(v.(int64))
	}
	return nil
}

func floatField(m Map, key string) *float64 {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	if i, isInt := v.(int64); isInt {
		return Ptr(float64(i))
	}
	if u, isUint := v.(uint64); isUint {
		return Ptr(float64(u))
	}
	return Ptr(v.(float64))
}

// ---- validation ------------------------------------------------------------------

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func reject(code, field, label, problem string) *InvalidJob {
	msg := problem
	if label != "" {
		msg = label + ": " + problem
	}
	return &InvalidJob{Code: code, Field: field, Message: msg}
}

func textOK(s string) bool {
	return utf8.ValidString(s) && !containsNUL(s)
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// textProblem says what is wrong with v as a (non-empty) text, or "".
func textProblem(v any, nonEmpty bool) string {
	s, ok := v.(string)
	if !ok || (nonEmpty && s == "") {
		if nonEmpty {
			return "must be a non-empty string"
		}
		return "must be a string"
	}
	if !textOK(s) {
		return "must be valid UTF-8 without NUL bytes"
	}
	return ""
}

func isNumber(v any) bool {
	switch x := v.(type) {
	case int64, uint64:
		return true
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	}
	return false
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v.(float64)
}

// jsonProblem says why v has no JSON meaning, or "".
func jsonProblem(v any) string {
	switch x := v.(type) {
	case nil, bool, int64:
		return ""
	case uint64:
		return "integer out of the signed 64-bit range"
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "NaN and infinity have no JSON meaning"
		}
		return ""
	case string:
		if !textOK(x) {
			return "strings must be valid UTF-8 without NUL bytes"
		}
		return ""
	case []any:
		for _, item := range x {
			if p := jsonProblem(item); p != "" {
				return p
			}
		}
		return ""
	case Map:
		seen := map[string]bool{}
		for _, kv := range x {
			k, ok := kv.Key.(string)
			if !ok || !textOK(k) {
				return "map keys must be UTF-8 strings"
			}
			if seen[k] {
				return "a map key is given more than once"
			}
			seen[k] = true
			if p := jsonProblem(kv.Value); p != "" {
				return p
			}
		}
		return ""
	}
	return "bin and ext values have no JSON meaning"
}
