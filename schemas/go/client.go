// client.go — submit jobs to llmq workers over Kafka and wait for their replies.
//
// One Client holds one producer (jobs keyed by job id, acknowledged by the
// broker before Send returns; cancels on the control topic) and one reply
// reader: a goroutine that reads every partition of the reply topic from
// where it ended when the client started (no consumer group, nothing
// committed), decodes only the replies whose Kafka key is a job this client
// waits for, and routes them to that job's Pending or Stream. Chunks of jobs
// that are not streamed are skipped by their `llmq-type` header, undecoded.
//
// At-least-once delivery is handled as schemas/spec.md says: the first
// terminal reply (done or error) of a job decides it; later ones are ignored.

package llmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure a Client; the zero values of the topics are the
// workers' defaults.
type Options struct {
	Brokers      []string
	JobsTopic    string // default "llmq.jobs"
	ReplyTopic   string // default "llmq.replies"; must exist
	ControlTopic string // default "llmq.control"; only Cancel writes to it
	// Lanes maps a priority lane's name to its jobs topic (the workers weigh
	// their jobs topics, kafka.lanes), e.g. {"urgent": "llmq.jobs.urgent"};
	// a job sent with the SendOption Lane(name) goes there, others to JobsTopic.
	Lanes        map[string]string
	KafkaOptions []kgo.Opt // more franz-go options for both clients (TLS, SASL, ...)
	Logger       *slog.Logger
}

// Client submits v1 jobs and waits for their replies. It is safe for
// concurrent use. Every job is sent with reply_to = the client's reply
// topic, which the workers' kafka.reply_allowlist must allow unless it is
// their default reply topic. Replies of jobs submitted before the client was
// created are not seen; partitions added to the reply topic later are not read.
type Client struct {
	opts     Options
	log      *slog.Logger
	producer *kgo.Client
	replies  *kgo.Client
	mu       sync.Mutex
	pending  map[string]*Pending
	closed   bool
	stop     context.CancelFunc
	stopped  chan struct{}
}

// NewClient connects, positions the reply reader at the end of every
// partition of the reply topic, and starts it.
func NewClient(ctx context.Context, o Options) (*Client, error) {
	o.JobsTopic = orDefault(o.JobsTopic, "llmq.jobs")
	o.ReplyTopic = orDefault(o.ReplyTopic, "llmq.replies")
	o.ControlTopic = orDefault(o.ControlTopic, "llmq.control")
	c := &Client{opts: o, log: o.Logger, pending: map[string]*Pending{}, stopped: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.KafkaOptions...)
	var err error
	if c.producer, err = kgo.NewClient(base...); err != nil {
		return nil, err
	}
	ends, err := c.replyEnds(ctx)
	if err == nil {
		c.replies, err = kgo.NewClient(append(base, kgo.ConsumePartitions(ends),
			kgo.FetchMaxWait(500*time.Millisecond))...)
	}
	if err != nil {
		c.producer.Close()
		return nil, err
	}
	readCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.read(readCtx)
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// replyEnds lists the end offset of every partition of the reply topic.
func (c *Client) replyEnds(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
	topic := c.opts.ReplyTopic
	listed, err := kadm.NewClient(c.producer).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("llmq: reply topic %s: %w", topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	listed.Each(func(o kadm.ListedOffset) { offsets[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(offsets) == 0 {
		return nil, fmt.Errorf("llmq: reply topic %s: not found", topic)
	}
	return map[string]map[int32]kgo.Offset{topic: offsets}, nil
}

// ---- submitting --------------------------------------------------------------

// SendOption changes where Submit, Send, SubmitMany and Stream send jobs.
type SendOption func(*sendOptions)

type sendOptions struct {
	lane    string
	hasLane bool
}

// Lane sends the jobs to the jobs topic of the priority lane name (one of
// Options.Lanes); a name the client does not know is an error before anything
// is sent. The job itself is the same in every lane.
func Lane(name string) SendOption {
	return func(o *sendOptions) { o.lane, o.hasLane = name, true }
}

// jobsTopic is the topic the options send jobs to.
func (c *Client) jobsTopic(opts []SendOption) (string, error) {
	var o sendOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.hasLane {
		return c.opts.JobsTopic, nil
	}
	topic, ok := c.opts.Lanes[o.lane]
	if !ok {
		names := make([]string, 0, len(c.opts.Lanes))
		for name := range c.opts.Lanes {
			names = append(names, name)
		}
		sort.Strings(names)
		return "", fmt.Errorf("llmq: lane %q: not one of this client's lanes %v", o.lane, names)
	}
	return topic, nil
}

// Submit sends one job and waits for its terminal reply: the Done reply, a
// *JobError (the worker's error reply), an *InvalidJob (refused before
// sending), a *DeliveryError, or ctx's error when ctx ends first. Without an
// ID the job gets a fresh random one; without DeadlineMs it gets ctx's
// deadline, if any, so the worker stops when the caller stops waiting.
func (c *Client) Submit(ctx context.Context, job Job, opts ...SendOption) (*Done, error) {
	p, err := c.Send(ctx, job, opts...)
	if err != nil {
		return nil, err
	}
	defer c.forget(p)
	return p.Wait(ctx)
}

// Send sends one job and returns once the broker has acknowledged it; the
// Pending's Wait gives its outcome.
func (c *Client) Send(ctx context.Context, job Job, opts ...SendOption) (*Pending, error) {
	ps, err := c.SubmitMany(ctx, []Job{job}, opts...)
	if err != nil {
		return nil, err
	}
	return ps[0], ps[0].deliveryError()
}

// SubmitMany sends many jobs at once and returns their Pendings, in order,
// once the broker has answered for all of them. All are validated before any
// is sent (an *InvalidJob names the index). A job the broker did not
// acknowledge has a Pending whose Wait returns a *DeliveryError.
func (c *Client) SubmitMany(ctx context.Context, jobs []Job, opts ...SendOption) ([]*Pending, error) {
	topic, err := c.jobsTopic(opts)
	if err != nil {
		return nil, err
	}
	records := make([]*kgo.Record, len(jobs))
	for i := range jobs {
		rec, err := c.prepare(ctx, jobs[i], topic)
		if err != nil {
			var inv *InvalidJob
			if len(jobs) > 1 && errors.As(err, &inv) {
				err = &InvalidJob{Code: inv.Code, Field: inv.Field, Message: fmt.Sprintf("jobs[%d]: %s", i, inv.Message)}
			}
			return nil, err
		}
		records[i] = rec
	}
	return c.sendRecords(ctx, records, false)
}

// sendRecords tracks and produces prepared jobs, and waits for the broker's answers.
func (c *Client) sendRecords(ctx context.Context, records []*kgo.Record, stream bool) ([]*Pending, error) {
	pendings, err := c.track(records, stream)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for i, rec := range records {
		wg.Add(1)
		p := pendings[i]
		c.producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				p.settle(nil, &DeliveryError{ID: p.ID, Err: err})
				c.forget(p)
			}
			wg.Done()
		})
	}
	wg.Wait()
	return pendings, nil
}

// prepare validates and encodes a job into its record for topic (ID,
// reply_to, deadline filled in).
func (c *Client) prepare(ctx context.Context, job Job, topic string) (*kgo.Record, error) {
	if job.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		job.ID = hex.EncodeToString(b[:])
	}
	if job.ReplyTo == "" {
		job.ReplyTo = c.opts.ReplyTopic
	} else if job.ReplyTo != c.opts.ReplyTopic {
		return nil, fmt.Errorf("llmq: reply_to %q: this client reads its replies from %q", job.ReplyTo, c.opts.ReplyTopic)
	}
	if deadline, ok := ctx.Deadline(); ok && job.DeadlineMs == nil {
		job.DeadlineMs = Ptr(deadline.UnixMilli())
	}
	value, err := EncodeJob(&job)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Key: []byte(job.ID), Value: value}, nil
}

func (c *Client) track(records []*kgo.Record, stream bool) ([]*Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	seen := map[string]bool{}
	for _, rec := range records {
		id := string(rec.Key)
		if c.pending[id] != nil || seen[id] {
			return nil, fmt.Errorf("llmq: job %s: already waiting for its reply", id)
		}
		seen[id] = true
	}
	out := make([]*Pending, len(records))
	for i, rec := range records {
		out[i] = newPending(c, string(rec.Key), stream)
		c.pending[out[i].ID] = out[i]
	}
	return out, nil
}

func (c *Client) forget(p *Pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[p.ID] == p {
		delete(c.pending, p.ID)
	}
}

// Cancel asks the workers to stop job id (a `cancel` message on the control
// topic, keyed by the id); run, when not "", limits it to that run. It
// returns once the broker has the message. A job this client waits for then
// ends with the worker's error reply (code `cancelled`); a job that already
// ended is not affected.
func (c *Client) Cancel(ctx context.Context, id, run, reason string) error {
	value, err := EncodeCancel(Cancel{ID: id, Run: run, Reason: reason})
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: c.opts.ControlTopic, Key: []byte(id), Value: value,
		Headers: []kgo.RecordHeader{{Key: "llmq-type", Value: []byte("cancel")}, {Key: "llmq-id", Value: []byte(id)}}}
	if err := c.producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("llmq: cancel %s: %w", id, err)
	}
	return nil
}

// Close stops the reply reader, flushes the producer and ends the jobs
// still waiting with ErrClosed. Safe to call twice.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	waiting := c.pending
	c.pending = map[string]*Pending{}
	c.mu.Unlock()
	c.stop()
	<-c.stopped
	c.replies.Close()
	c.producer.Close()
	for _, p := range waiting {
		p.settle(nil, fmt.Errorf("job %s: %w", p.ID, ErrClosed))
	}
}

// ---- reading replies -----------------------------------------------------------

func (c *Client) read(ctx context.Context) {
	defer close(c.stopped)
	for {
		fetches := c.replies.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			c.log.Warn("llmq: reading replies", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachRecord(c.route)
	}
}

// route hands one reply to the job waiting for it; replies of other jobs are
// skipped without decoding (the Kafka key is the job id).
func (c *Client) route(rec *kgo.Record) {
	id := string(rec.Key)
	c.mu.Lock()
	p := c.pending[id]
	c.mu.Unlock()
	if p == nil || (!p.streamed() && header(rec, "llmq-type") == "chunk") {
		return
	}
	reply, err := DecodeReply(rec.Value)
	if err != nil {
		c.log.Warn("llmq: skipping a reply that is not v1", "job", id, "err", err)
		return
	}
	switch r := reply.(type) {
	case *Chunk:
		if r.ID == id {
			p.chunk(r)
			return
		}
	case *Done:
		if r.ID == id {
			p.settle(r, nil)
			c.forget(p)
			return
		}
	case *Error:
		if r.ID == id {
			p.settle(nil, newJobError(r))
			c.forget(p)
			return
		}
	}
	c.log.Warn("llmq: skipping a reply keyed by a job but not for it", "job", id)
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
