// stream_test.go — how a Stream turns the replies of one job (possibly of
// several runs) into pieces, without Kafka: replies are fed the way the
// client's reply reader feeds them (chunks, then the terminal reply).
package llmq

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func newTestStream() *Stream {
	c := &Client{pending: map[string]*Pending{}}
	p := newPending(c, "j", true)
	c.pending["j"] = p
	return &Stream{Pending: p, runs: map[string]map[int64]string{}}
}

type reply = any

func ch(run string, seq int64, text string) reply {
	return &Chunk{Type: "chunk", ID: "j", Run: run, Seq: seq, Text: text}
}

func dn(run, text string) reply { return &Done{Type: "done", ID: "j", Run: run, Text: text} }

func rs(run, discarded string) string { return "<restart " + run + ":" + discarded + ">" }

// feed hands the replies to the stream and returns its pieces (a restart as rs()).
func feed(t *testing.T, s *Stream, replies ...reply) ([]string, error) {
	t.Helper()
	for _, r := range replies {
		switch x := r.(type) {
		case *Chunk:
			s.chunk(x)
		case *Done:
			s.settle(x, nil)
		case *Error:
			s.settle(nil, newJobError(x))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var out []string
	for p, err := range s.All(ctx) {
		if err != nil {
			return out, err
		}
		if p.Restart != nil {
			out = append(out, rs(p.Restart.Run, p.Restart.Discarded))
		} else {
			out = append(out, p.Text)
		}
	}
	return out, nil
}

func TestStreamRuns(t *testing.T) {
	cases := []struct {
		name    string
		replies []reply
		want    []string
	}{
		{"one run in order", []reply{ch("a", 0, "Once"), ch("a", 1, " upon"), ch("a", 2, ""), dn("a", "Once upon")},
			[]string{"Once", " upon"}},
		{"out of order waits its turn", []reply{ch("a", 1, "B"), ch("a", 0, "A"), dn("a", "AB")}, []string{"A", "B"}},
		{"rerun restarts once", []reply{ch("a", 0, "Hel"), ch("a", 1, "lo"), ch("b", 0, "Hi"), ch("a", 2, " late"),
			ch("b", 1, " there"), dn("b", "Hi there")},
			[]string{"Hel", "lo", rs("b", "Hello"), "Hi", " there"}},
		{"terminal names an older run", []reply{ch("a", 0, "x"), ch("b", 0, "y"), ch("a", 1, "z"), dn("a", "xz")},
			[]string{"x", rs("b", "x"), "y", rs("a", "y"), "x", "z"}},
		{"no chunks", []reply{dn("a", "all at once")}, []string{"all at once"}},
		{"missing tail from done", []reply{ch("a", 0, "ab"), dn("a", "abcd")}, []string{"ab", "cd"}},
		{"chunks disagreeing with done", []reply{ch("a", 0, "ab"), ch("a", 2, "zz"), dn("a", "xyz")},
			[]string{"ab", rs("a", "ab"), "xyz"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStream()
			got, err := feed(t, s, tc.replies...)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if s.Done == nil || s.Done.Text != tc.replies[len(tc.replies)-1].(*Done).Text {
				t.Fatalf("Done %+v", s.Done)
			}
		})
	}
}

func TestStreamErrorAfterTheTextSoFar(t *testing.T) {
	for _, tc := range []struct {
		code      string
		retryable bool
		class     error
	}{{"expired", false, ErrExpired}, {"backend_failed", true, ErrWorkerFailure}, {"new_code", false, nil}} {
		s := newTestStream()
		got, err := feed(t, s, ch("r", 0, "partial"),
			&Error{ID: "j", Run: "r", Code: tc.code, Message: "m", Retryable: tc.retryable})
		var je *JobError
		if !reflect.DeepEqual(got, []string{"partial"}) || !errors.As(err, &je) {
			t.Fatalf("%s: got %q, %v", tc.code, got, err)
		}
		if je.Code != tc.code || je.Retryable != tc.retryable || je.Run != "r" {
			t.Fatalf("%+v", je)
		}
		for _, class := range []error{ErrRejected, ErrExpired, ErrWorkerFailure, ErrCancelled} {
			if errors.Is(err, class) != (class == tc.class) {
				t.Fatalf("%s: errors.Is(%v) wrong", tc.code, class)
			}
		}
	}
}

func TestStreamSilenceEndsWithTheContext(t *testing.T) {
	s := newTestStream()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if len(s.client.pending) != 0 {
		t.Fatal("the job is still waited for")
	}
}

func TestCancelBytes(t *testing.T) {
	data, err := EncodeCancel(Cancel{ID: "job-1", Reason: "user"})
	want := []byte("\x84\xa1v\x01\xa4type\xa6cancel\xa2id\xa5job-1\xa6reason\xa4user")
	if err != nil || string(data) != string(want) {
		t.Fatalf("%x %v", data, err)
	}
	if _, err := EncodeCancel(Cancel{}); err == nil {
		t.Fatal("an empty id was accepted")
	}
}
