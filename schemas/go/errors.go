// errors.go — the errors of the llmq Go library.
//
//	*InvalidJob    a job this library refuses to send (Code, Field: the worker's verdict)
//	*InvalidReply  bytes that are not a v1 reply
//	*JobError      the worker answered an `error` reply (Code, Message, Retryable, Run, ...);
//	               errors.Is(err, ErrRejected / ErrExpired / ErrWorkerFailure / ErrCancelled)
//	               sorts it by code
//	ErrClosed      the client was closed before the job ended
//	*DeliveryError the broker did not acknowledge a job
//
// Waiting that ends with the caller's context returns the context's error
// (context.DeadlineExceeded, context.Canceled), wrapped with the job id.

package llmq

import (
	"errors"
	"fmt"
)

// InvalidJob is a job a v1 worker would reject while decoding it: Code is the
// worker's error code, Field the job field at fault ("" when the message is
// no job map at all); the message starts with the field's name.
type InvalidJob struct {
	Code    string
	Field   string
	Message string
}

func (e *InvalidJob) Error() string { return e.Message }

// InvalidReply is bytes that do not decode to a v1 chunk, done, error or heartbeat.
type InvalidReply struct{ Message string }

func (e *InvalidReply) Error() string { return e.Message }

// DeliveryError is a job the broker did not acknowledge: it was not submitted.
type DeliveryError struct {
	ID  string
	Err error
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("job %s: not delivered to Kafka: %v", e.ID, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Classes of JobError, for errors.Is.
var (
	// ErrRejected: the worker refused the job as submitted (it never ran).
	ErrRejected = errors.New("llmq: job rejected")
	// ErrExpired: the job's deadline_ms passed before it finished.
	ErrExpired = errors.New("llmq: job expired")
	// ErrWorkerFailure: llama-server or the worker failed while running the job.
	ErrWorkerFailure = errors.New("llmq: worker failure")
	// ErrCancelled: the job was cancelled through the control topic.
	ErrCancelled = errors.New("llmq: job cancelled")
	// ErrClosed: the client was closed while the job still waited for its reply.
	ErrClosed = errors.New("llmq: client closed")
)

var classByCode = map[string]error{
	"malformed": ErrRejected, "unsupported_version": ErrRejected, "invalid_id": ErrRejected,
	"invalid_field": ErrRejected, "invalid_input": ErrRejected, "prompt_too_large": ErrRejected,
	"reply_to_denied": ErrRejected, "model_mismatch": ErrRejected, "context_exceeded": ErrRejected,
	"expired":       ErrExpired,
	"backend_error": ErrWorkerFailure, "backend_failed": ErrWorkerFailure, "internal": ErrWorkerFailure,
	"cancelled": ErrCancelled,
}

// JobError is the terminal `error` reply of a job. A code this library does
// not know matches none of the classes; Retryable (set by the worker) says
// whether submitting the same job again may succeed.
// PartialText is what the run generated before it was stopped (an expired or
// cancelled job that was generating); nil when the reply has none.
type JobError struct {
	Reply                          *Error
	ID, Code, Message, Run, Worker string
	Retryable                      bool
	PartialText                    *string
}

func newJobError(r *Error) *JobError {
	return &JobError{Reply: r, ID: r.ID, Code: r.Code, Message: r.Message, Run: r.Run,
		Worker: r.Worker, Retryable: r.Retryable, PartialText: r.PartialText}
}

func (e *JobError) Error() string { return fmt.Sprintf("job %s: %s: %s", e.ID, e.Code, e.Message) }

// Is reports whether target is the class of e's code (ErrRejected, ...).
func (e *JobError) Is(target error) bool {
	class, ok := classByCode[e.Code]
	return ok && class == target
}
