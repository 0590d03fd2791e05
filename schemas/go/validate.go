// validate.go — the worker's decoding verdicts for a job map, checked in the
// order of the field table of schemas/spec.md (the first broken rule wins),
// with the worker's codes and messages that start with the field's name.

package llmq

import "fmt"

// fields is a job map's entries by string key: the last value, and the keys seen twice.
type fields struct {
	values   map[string]any
	repeated map[string]bool
}

func index(m Map) fields {
	f := fields{values: map[string]any{}, repeated: map[string]bool{}}
	for _, kv := range m {
		k, ok := kv.Key.(string)
		if !ok {
			continue
		}
		if _, seen := f.values[k]; seen {
			f.repeated[k] = true
		}
		f.values[k] = kv.Value
	}
	return f
}

// get returns a field's value; a field given twice is invalid_field.
func (f fields) get(name string) (any, bool, *InvalidJob) {
	if f.repeated[name] {
		return nil, false, reject("invalid_field", name, name, "given more than once")
	}
	v, ok := f.values[name]
	return v, ok, nil
}

// validate returns nil or the *InvalidJob of the first broken rule.
func validate(root any) error {
	m, ok := root.(Map)
	if !ok {
		return reject("malformed", "", "", "a job must be a msgpack map")
	}
	for _, kv := range m {
		if _, ok := kv.Key.(string); !ok {
			return reject("malformed", "", "", "job map keys must be strings")
		}
	}
	f := index(m)
	for _, check := range []func(fields) *InvalidJob{checkVersion, checkID, checkInput,
		checkSampling, checkStop, checkGrammar, checkRouting, checkSteering} {
		if err := check(f); err != nil {
			return err
		}
	}
	return nil
}

func checkVersion(f fields) *InvalidJob {
	v, ok, err := f.get("v")
	if err != nil {
		return err
	}
	if !ok {
		return reject("unsupported_version", "v", "v", fmt.Sprintf("missing; this client speaks v %d", Version))
	}
	if i, isInt := v.(int64); !isInt || i != Version {
		return reject("unsupported_version", "v", "v", fmt.Sprintf("must be the integer %d", Version))
	}
	return nil
}

func checkID(f fields) *InvalidJob {
	id, ok, err := f.get("id")
	if err != nil {
		return err
	}
	if !ok {
		return reject("invalid_id", "id", "id", "missing")
	}
	if p := textProblem(id, true); p != "" {
		return reject("invalid_id", "id", "id", p)
	}
	if n := len(id.(string)); n > IDMaxBytes {
		return reject("invalid_id", "id", "id", fmt.Sprintf("must be at most %d bytes (got %d)", IDMaxBytes, n))
	}
	return nil
}

func checkInput(f fields) *InvalidJob {
	prompt, hasPrompt, err := f.get("prompt")
	if err != nil {
		return err
	}
	messages, hasMessages, err := f.get("messages")
	if err != nil {
		return err
	}
	switch {
	case hasPrompt && hasMessages:
		return reject("invalid_input", "prompt", "prompt, messages", "give one, not both")
	case hasPrompt:
		if p := textProblem(prompt, false); p != "" {
			return reject("invalid_input", "prompt", "prompt", p)
		}
	case hasMessages:
		list, ok := messages.([]any)
		if !ok || len(list) == 0 {
			return reject("invalid_input", "messages", "messages", "must be a non-empty array of maps")
		}
		for i, item := range list {
			if err := checkMessage(i, item); err != nil {
				return err
			}
		}
	default:
		return reject("invalid_input", "prompt", "prompt, messages", "one of them is required")
	}
	return nil
}

func checkMessage(i int, item any) *InvalidJob {
	where := fmt.Sprintf("messages[%d]", i)
	m, ok := item.(Map)
	if !ok {
		return reject("invalid_input", "messages", where, "must be a map")
	}
	f := index(m)
	for _, key := range []string{"role", "content"} {
		label := where + "." + key
		if f.repeated[key] {
			return reject("invalid_input", "messages", label, "given more than once")
		}
		v, ok := f.values[key]
		if !ok {
			return reject("invalid_input", "messages", label, "missing")
		}
		if p := textProblem(v, key == "role"); p != "" {
			return reject("invalid_input", "messages", label, p)
		}
	}
	return nil
}

// checkInt: an int >= min (no minimum when min is nil).
func checkInt(f fields, name string, min *int64) *InvalidJob {
	v, ok, err := f.get(name)
	if err != nil || !ok {
		return err
	}
	if i, isInt := v.(int64); isInt && (min == nil || i >= *min) {
		return nil
	}
	if min == nil {
		return reject("invalid_field", name, name, "must be a signed 64-bit integer")
	}
	return reject("invalid_field", name, name, fmt.Sprintf("must be an integer >= %d", *min))
}

// checkNumber: a number >= 0, and <= max unless max is 0.
func checkNumber(f fields, name string, max float64) *InvalidJob {
	v, ok, err := f.get(name)
	if err != nil || !ok {
		return err
	}
	if isNumber(v) && toFloat(v) >= 0 && (max == 0 || toFloat(v) <= max) {
		return nil
	}
	if max == 0 {
		return reject("invalid_field", name, name, "must be a number >= 0")
	}
	return reject("invalid_field", name, name, fmt.Sprintf("must be a number between 0 and %g", max))
}

func checkSampling(f fields) *InvalidJob {
	for _, check := range []func() *InvalidJob{
		func() *InvalidJob { return checkInt(f, "max_tokens", Ptr(int64(1))) },
		func() *InvalidJob { return checkNumber(f, "temperature", 0) },
		func() *InvalidJob { return checkNumber(f, "top_p", 1) },
		func() *InvalidJob { return checkInt(f, "top_k", Ptr(int64(0))) },
		func() *InvalidJob { return checkNumber(f, "min_p", 1) },
		func() *InvalidJob { return checkInt(f, "seed", nil) },
		func() *InvalidJob { return checkNumber(f, "repeat_penalty", 0) },
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func checkStop(f fields) *InvalidJob {
	v, ok, err := f.get("stop")
	if err != nil || !ok {
		return err
	}
	list, isList := v.([]any)
	if !isList {
		return reject("invalid_field", "stop", "stop", "must be an array of strings")
	}
	if len(list) > StopMax {
		return reject("invalid_field", "stop", "stop", fmt.Sprintf("at most %d strings (got %d)", StopMax, len(list)))
	}
	for i, s := range list {
		if p := textProblem(s, true); p != "" {
			return reject("invalid_field", "stop", fmt.Sprintf("stop[%d]", i), p)
		}
	}
	return nil
}

func checkGrammar(f fields) *InvalidJob {
	grammar, hasGrammar, err := f.get("grammar")
	if err != nil {
		return err
	}
	if hasGrammar {
		if p := textProblem(grammar, false); p != "" {
			return reject("invalid_field", "grammar", "grammar", p)
		}
	}
	schema, ok, err := f.get("json_schema")
	if err != nil || !ok {
		return err
	}
	if _, isMap := schema.(Map); !isMap {
		return reject("invalid_field", "json_schema", "json_schema", "must be a map")
	}
	if p := jsonProblem(schema); p != "" {
		return reject("invalid_field", "json_schema", "json_schema", p)
	}
	if hasGrammar {
		return reject("invalid_input", "grammar", "grammar, json_schema", "give one, not both")
	}
	return nil
}

func validTopic(v any) bool {
	s, ok := v.(string)
	return ok && len(s) <= TopicMax && topicRE.MatchString(s) && s != "." && s != ".."
}

func checkRouting(f fields) *InvalidJob {
	if v, ok, err := f.get("stream"); err != nil {
		return err
	} else if _, isBool := v.(bool); ok && !isBool {
		return reject("invalid_field", "stream", "stream", "must be a boolean")
	}
	if v, ok, err := f.get("reply_to"); err != nil {
		return err
	} else if ok && !validTopic(v) {
		return reject("invalid_field", "reply_to", "reply_to",
			fmt.Sprintf("must be a Kafka topic name (1..%d of [a-zA-Z0-9._-])", TopicMax))
	}
	if err := checkInt(f, "deadline_ms", nil); err != nil {
		return err
	}
	if v, ok, err := f.get("model"); err != nil {
		return err
	} else if p := textProblem(v, true); ok && p != "" {
		return reject("invalid_field", "model", "model", p)
	}
	if v, ok, err := f.get("meta"); err != nil {
		return err
	} else if _, isMap := v.(Map); ok && !isMap {
		return reject("invalid_field", "meta", "meta", "must be a map")
	}
	return nil
}

// checkRange: an int in 0..max.
func checkRange(f fields, name string, max int64) *InvalidJob {
	v, ok, err := f.get(name)
	if err != nil || !ok {
		return err
	}
	if i, isInt := v.(int64); isInt && i >= 0 && i <= max {
		return nil
	}
	return reject("invalid_field", name, name, fmt.Sprintf("must be an integer between 0 and %d", max))
}

func checkSteering(f fields) *InvalidJob {
	if err := checkRange(f, "logprobs", LogprobsMax); err != nil {
		return err
	}
	if err := checkLora(f); err != nil {
		return err
	}
	return checkRange(f, "chunk_ms", ChunkMsMax)
}

func checkLora(f fields) *InvalidJob {
	v, ok, err := f.get("lora")
	if err != nil || !ok {
		return err
	}
	list, isList := v.([]any)
	if !isList {
		return reject("invalid_field", "lora", "lora", "must be an array of {name, scale} maps")
	}
	if len(list) > LoraMax {
		return reject("invalid_field", "lora", "lora", fmt.Sprintf("at most %d {name, scale} maps (got %d)", LoraMax, len(list)))
	}
	names := map[string]bool{}
	for i, item := range list {
		where := fmt.Sprintf("lora[%d]", i)
		m, isMap := item.(Map)
		if !isMap {
			return reject("invalid_field", "lora", where, "must be a map")
		}
		entry := index(m)
		if entry.repeated["name"] || entry.repeated["scale"] {
			return reject("invalid_field", "lora", where, "a key given more than once")
		}
		name, hasName := entry.values["name"]
		problem := "missing"
		if hasName {
			problem = textProblem(name, true)
		}
		if problem != "" {
			return reject("invalid_field", "lora", where+".name", problem)
		}
		if scale, hasScale := entry.values["scale"]; hasScale && !isNumber(scale) {
			return reject("invalid_field", "lora", where+".scale", "must be a number")
		}
		if names[name.(string)] {
			return reject("invalid_field", "lora", where, fmt.Sprintf("adapter %q given twice", name))
		}
		names[name.(string)] = true
	}
	return nil
}
