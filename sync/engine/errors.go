package engine

import (
	"errors"
	"fmt"
)

// Kind classifies an error for every transport at once. The HTTP server maps
// kinds to statuses in exactly one place; adapters translate driver errors
// into kinds so that nothing above them looks at driver error text.
type Kind uint8

const (
	KindInternal Kind = iota
	KindInvalid
	KindUnauthorized
	KindForbidden
	KindNotFound
	KindConflict
	KindTooLarge
	KindRateLimited
	KindUnavailable
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindUnauthorized:
		return "unauthorized"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindTooLarge:
		return "too_large"
	case KindRateLimited:
		return "rate_limited"
	case KindUnavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// Stable machine codes. Mobile apps switch on these, so they never change
// meaning; docs/protocol.md is their catalogue.
const (
	CodeMalformedJSON     = "malformed_json"
	CodeInvalidRequest    = "invalid_request"
	CodeBadCheckpoint     = "bad_checkpoint"
	CodeLimitOutOfRange   = "limit_out_of_range"
	CodeUnauthenticated   = "unauthenticated"
	CodeTokenInvalid      = "token_invalid"
	CodeTokenExpired      = "token_expired"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeBodyTooLarge      = "body_too_large"
	CodeTooManyMutations  = "too_many_mutations"
	CodeRateLimited       = "rate_limited"
	CodeUnavailable       = "unavailable"
	CodeInternal          = "internal"
	CodeInvalidMutation   = "invalid_mutation"
	CodeUnknownCollection = "unknown_collection"
	CodeSchemaViolation   = "schema_violation"
	CodeServerField       = "server_field"
	CodeFieldNotWritable  = "field_not_writable"
	CodeInvalidTransition = "invalid_transition"
	CodeDocumentLocked    = "document_locked"
	CodeImmutableField    = "immutable_field"
	CodeDocumentTooLarge  = "document_too_large"
	CodeBadBaseVersion    = "bad_base_version"
	CodeAlreadyExists     = "already_exists"
	CodeDocumentDeleted   = "document_deleted"
)

// Error is the one error type of the domain: a kind for the transport, a
// stable code and message for the client, and the JSON pointer of the
// offending field when there is one.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Pointer string
	Err     error // the cause, for logs only; never shown to clients
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Pointer != "" {
		msg += " (at " + e.Pointer + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind Kind, code, pointer, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Pointer: pointer, Message: fmt.Sprintf(format, args...)}
}

// Wrap marks err with a kind and code, keeping it as the cause.
func Wrap(err error, kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: err}
}

// ErrorKind returns the kind of err, KindInternal for errors the domain did not classify.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorCode returns the stable code of err, CodeInternal for unclassified errors.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
