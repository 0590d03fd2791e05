// llmq-check runs the Go client against a live broker and worker and prints
// what happened as one JSON object (tests/integration/test_producer_go.py
// reads it): a submit, a stream, a job the worker rejects, a batch, and a
// cancel on the control topic.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"llmq"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "bootstrap brokers, comma separated")
	jobs := flag.String("jobs", "llmq.jobs", "jobs topic")
	replies := flag.String("replies", "llmq.replies", "reply topic")
	control := flag.String("control", "llmq.control", "control topic")
	batch := flag.Int("batch", 100, "jobs in the batch")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := llmq.NewClient(ctx, llmq.Options{Brokers: strings.Split(*brokers, ","),
		JobsTopic: *jobs, ReplyTopic: *replies, ControlTopic: *control})
	if err != nil {
		fmt.Fprintln(os.Stderr, "llmq-check:", err)
		os.Exit(2)
	}
	defer c.Close()
	out := map[string]any{}
	for _, step := range []struct {
		name string
		run  func(context.Context, *llmq.Client) (any, error)
	}{{"submit", submit}, {"stream", stream}, {"rejected", rejected}, {"invalid", invalid},
		{"batch", func(ctx context.Context, c *llmq.Client) (any, error) { return runBatch(ctx, c, *batch) }},
		{"cancel", cancelJob}} {
		stepCtx, stop := context.WithTimeout(ctx, 2*time.Minute)
		res, err := step.run(stepCtx, c)
		stop()
		if err != nil {
			res = map[string]any{"error": err.Error()}
		}
		out[step.name] = res
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func submit(ctx context.Context, c *llmq.Client) (any, error) {
	d, err := c.Submit(ctx, llmq.Job{Prompt: "Once upon a time", MaxTokens: llmq.Ptr[int64](12),
		Seed: llmq.Ptr[int64](3), Meta: llmq.Map{{Key: "trace", Value: "t-1"}}})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func stream(ctx context.Context, c *llmq.Client) (any, error) {
	s, err := c.Stream(ctx, llmq.Job{Messages: []llmq.Message{{Role: "user", Content: "Tell a story."}},
		MaxTokens: llmq.Ptr[int64](24)})
	if err != nil {
		return nil, err
	}
	var pieces []string
	restarts := 0
	for p, err := range s.All(ctx) {
		if err != nil {
			return nil, err
		}
		if p.Restart != nil {
			restarts++
			pieces = nil
		} else {
			pieces = append(pieces, p.Text)
		}
	}
	return map[string]any{"pieces": len(pieces), "joined": strings.Join(pieces, ""),
		"restarts": restarts, "done": s.Done}, nil
}

// rejected: a job naming a model no worker serves gets the worker's error reply.
func rejected(ctx context.Context, c *llmq.Client) (any, error) {
	_, err := c.Submit(ctx, llmq.Job{Prompt: "x", Model: "no-such-model"})
	var je *llmq.JobError
	if !errors.As(err, &je) {
		return nil, fmt.Errorf("want a JobError, got %v", err)
	}
	return map[string]any{"code": je.Code, "retryable": je.Retryable, "run": je.Run,
		"is_rejected": errors.Is(err, llmq.ErrRejected), "is_expired": errors.Is(err, llmq.ErrExpired)}, nil
}

// invalid: a job the library refuses before sending.
func invalid(ctx context.Context, c *llmq.Client) (any, error) {
	_, err := c.Submit(ctx, llmq.Job{Prompt: "x", Temperature: llmq.Ptr(-1.0)})
	var inv *llmq.InvalidJob
	if !errors.As(err, &inv) {
		return nil, fmt.Errorf("want an InvalidJob, got %v", err)
	}
	return map[string]any{"code": inv.Code, "field": inv.Field}, nil
}

func runBatch(ctx context.Context, c *llmq.Client, n int) (any, error) {
	jobs := make([]llmq.Job, n)
	for i := range jobs {
		jobs[i] = llmq.Job{Prompt: fmt.Sprintf("Job number %d", i), MaxTokens: llmq.Ptr[int64](4),
			Meta: llmq.Map{{Key: "i", Value: i}}}
	}
	t0 := time.Now()
	pendings, err := c.SubmitMany(ctx, jobs)
	if err != nil {
		return nil, err
	}
	done, inOrder := 0, true
	var firstErr string
	for i, o := range llmq.Collect(ctx, pendings) {
		if o.Err != nil {
			firstErr = o.Err.Error()
			continue
		}
		done++
		if v, _ := o.Done.Meta.Get("i"); v != int64(i) {
			inOrder = false
		}
	}
	return map[string]any{"done": done, "meta_in_order": inOrder, "first_error": firstErr,
		"seconds": time.Since(t0).Seconds()}, nil
}

func cancelJob(ctx context.Context, c *llmq.Client) (any, error) {
	if err := c.Cancel(ctx, "go-cancel-1", "", "llmq-check"); err != nil {
		return nil, err
	}
	return map[string]any{"sent": "go-cancel-1"}, nil
}
