// pending.go — one submitted job's outcome (Pending), a streamed job's text
// (Stream, following the run rule of schemas/spec.md), and batch collection.

package llmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Pending is a job the broker has; Wait gives its outcome.
type Pending struct {
	ID     string
	client *Client
	done   chan struct{}
	once   sync.Once
	result *Done
	err    error

	mu     sync.Mutex // guards chunks, for streamed jobs
	chunks []*Chunk
	signal chan struct{} // non-nil for streamed jobs; a chunk arrived
}

func newPending(c *Client, id string, stream bool) *Pending {
	p := &Pending{ID: id, client: c, done: make(chan struct{})}
	if stream {
		p.signal = make(chan struct{}, 1)
	}
	return p
}

func (p *Pending) streamed() bool { return p.signal != nil }

// settle sets the outcome unless it is already set (the first terminal reply wins).
func (p *Pending) settle(d *Done, err error) {
	p.once.Do(func() {
		p.result, p.err = d, err
		close(p.done)
	})
}

func (p *Pending) chunk(c *Chunk) {
	p.mu.Lock()
	p.chunks = append(p.chunks, c)
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *Pending) takeChunks() []*Chunk {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.chunks
	p.chunks = nil
	return out
}

func (p *Pending) deliveryError() error {
	select {
	case <-p.done:
		var d *DeliveryError
		if errors.As(p.err, &d) {
			return d
		}
	default:
	}
	return nil
}

// Wait returns the job's Done reply, or its error (see Client.Submit); when
// ctx ends first it returns ctx's error and the job is still waited for.
func (p *Pending) Wait(ctx context.Context) (*Done, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, fmt.Errorf("job %s: no terminal reply: %w", p.ID, ctx.Err())
	}
}

// Cancel sends a cancel for this job (Client.Cancel); Wait then returns the
// worker's answer, a *JobError with code `cancelled` unless the job ended first.
func (p *Pending) Cancel(ctx context.Context, reason string) error {
	return p.client.Cancel(ctx, p.ID, "", reason)
}

// Outcome is one job's result in Collect: Done, or Err (a *JobError, a
// *DeliveryError, ErrClosed, or the context's error when it ended first).
type Outcome struct {
	ID   string
	Done *Done
	Err  error
}

// Collect waits for every Pending until ctx ends and returns one Outcome per
// Pending, in order; the jobs are no longer waited for afterwards.
func Collect(ctx context.Context, pendings []*Pending) []Outcome {
	out := make([]Outcome, len(pendings))
	for i, p := range pendings {
		d, err := p.Wait(ctx)
		out[i] = Outcome{ID: p.ID, Done: d, Err: err}
		p.client.forget(p)
	}
	return out
}

// ---- streams -----------------------------------------------------------------------

// Restart says that the text a stream gave so far is void: the job runs
// again (llama-server died and the worker retried it, or a crashed worker's
// job went to another one) and Run's text follows from its beginning.
// Discarded is the text given since the start or the previous Restart.
type Restart struct {
	Run       string
	Discarded string
}

// Piece is one item of a stream: Text, or (Restart non-nil) a restart.
type Piece struct {
	Text    string
	Restart *Restart
}

// Stream is the text of one streamed job; see Client.Stream.
type Stream struct {
	*Pending
	// Done is the terminal reply, once Next has returned io.EOF.
	Done *Done

	runs     map[string]map[int64]string // run -> seq -> text
	run      string                      // the run whose text is being given
	hasRun   bool
	nextSeq  int64
	yielded  strings.Builder // given since the start or the last restart
	out      []Piece
	finished bool
}

// Stream sends one job with stream = true and returns its text as a Stream.
//
// Reruns: a job can run more than once (schemas/spec.md), and only the run
// named by the terminal reply is the result. The stream follows the newest
// run: when chunks of a new run arrive, or the terminal reply names another
// run than the one being given, Next returns a Piece with a Restart and then
// that run's text from its beginning. So the Text pieces after the last
// Restart (or from the start) join up to exactly Done.Text.
func (c *Client) Stream(ctx context.Context, job Job, opts ...SendOption) (*Stream, error) {
	if job.Stream != nil && !*job.Stream {
		return nil, errors.New("llmq: Stream needs stream = true; use Submit")
	}
	job.Stream = Ptr(true)
	topic, err := c.jobsTopic(opts)
	if err != nil {
		return nil, err
	}
	rec, err := c.prepare(ctx, job, topic)
	if err != nil {
		return nil, err
	}
	ps, err := c.sendRecords(ctx, []*kgo.Record{rec}, true)
	if err != nil {
		return nil, err
	}
	if err := ps[0].deliveryError(); err != nil {
		return nil, err
	}
	return &Stream{Pending: ps[0], runs: map[string]map[int64]string{}}, nil
}

// Next returns the next Piece; io.EOF after the terminal Done reply (then in
// s.Done), the job's error after an error reply, or ctx's error when ctx ends
// first (the job is then no longer waited for).
func (s *Stream) Next(ctx context.Context) (Piece, error) {
	for {
		if len(s.out) > 0 {
			p := s.out[0]
			s.out = s.out[1:]
			return p, nil
		}
		if s.finished {
			return Piece{}, io.EOF
		}
		if chunks := s.takeChunks(); len(chunks) > 0 {
			for _, c := range chunks {
				s.onChunk(c)
			}
			continue
		}
		select {
		case <-s.done:
			if chunks := s.takeChunks(); len(chunks) > 0 { // came just before the terminal reply
				for _, c := range chunks {
					s.onChunk(c)
				}
				continue
			}
			if s.err != nil {
				s.finished = true
				return Piece{}, s.err
			}
			s.onDone(s.result)
		case <-s.signal:
		case <-ctx.Done():
			s.client.forget(s.Pending)
			return Piece{}, fmt.Errorf("job %s: %w", s.ID, ctx.Err())
		}
	}
}

// All iterates over the pieces; it stops after the terminal reply (nil
// error) or at the first error, which it yields.
func (s *Stream) All(ctx context.Context) iter.Seq2[Piece, error] {
	return func(yield func(Piece, error) bool) {
		for {
			p, err := s.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

func (s *Stream) switchTo(run string) {
	if s.hasRun {
		s.out = append(s.out, Piece{Restart: &Restart{Run: run, Discarded: s.yielded.String()}})
	}
	s.run, s.hasRun, s.nextSeq = run, true, 0
	s.yielded.Reset()
}

// catchUp gives the current run's chunks that are next in seq order.
func (s *Stream) catchUp() {
	chunks := s.runs[s.run]
	for {
		text, ok := chunks[s.nextSeq]
		if !ok {
			return
		}
		s.nextSeq++
		s.yielded.WriteString(text)
		if text != "" {
			s.out = append(s.out, Piece{Text: text})
		}
	}
}

func (s *Stream) onChunk(c *Chunk) {
	seqs, known := s.runs[c.Run]
	if !known {
		seqs = map[int64]string{}
		s.runs[c.Run] = seqs
	}
	seqs[c.Seq] = c.Text
	if !known && (!s.hasRun || c.Run != s.run) {
		s.switchTo(c.Run) // a newer run: the older one is most likely dead
	}
	if c.Run == s.run {
		s.catchUp()
	}
}

func (s *Stream) onDone(d *Done) {
	if !s.hasRun || d.Run != s.run {
		s.switchTo(d.Run)
	}
	s.catchUp()
	soFar := s.yielded.String()
	if !strings.HasPrefix(d.Text, soFar) { // chunks went missing: the done text rules
		s.switchTo(d.Run)
		soFar = ""
	}
	if len(d.Text) > len(soFar) {
		s.out = append(s.out, Piece{Text: d.Text[len(soFar):]})
	}
	s.Done, s.finished = d, true
}
