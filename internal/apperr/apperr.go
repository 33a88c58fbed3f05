// Package apperr is the application's one error type: every failure a person or a script can
// see carries a stable code, the domain rule it broke (V4, F1, …) and a message written for the
// person who must fix it. Internal detail stays in the wrapped error, for logs only.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the kind of failure. It decides the HTTP status and the CLI exit status.
type Code string

// The codes, as style.md lists them.
const (
	Invalid         Code = "invalid"
	NotFound        Code = "not_found"
	Conflict        Code = "conflict"
	Forbidden       Code = "forbidden"
	Unauthenticated Code = "unauthenticated"
	Locked          Code = "locked"
	Internal        Code = "internal"
)

// Error is a failure with a code, the rule it concerns and a human message.
type Error struct {
	Code    Code   // kind of failure
	Rule    string // domain rule id (V4, F1, R9.1, L1 …), empty when none applies
	Message string // for people; never internal detail
	Op      string // operation that failed, for logs ("ledger.Post")
	Err     error  // underlying cause, for logs and errors.Is
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Rule != "" {
		msg = e.Rule + ": " + msg
	}
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given code and rule and a formatted message.
func New(code Code, rule, format string, args ...any) *Error {
	return &Error{Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal error for op that keeps err for logs and shows people only
// "internal error". An err that already is an *Error is returned as it is.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: Internal, Message: "internal error", Op: op, Err: err}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of err: Internal for an error that is not an *Error, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// RuleOf returns the rule id carried by err, or "".
func RuleOf(err error) string {
	if e := As(err); e != nil {
		return e.Rule
	}
	return ""
}

// Public returns what a person may be shown of err: the rule and message of an *Error that is
// not internal, or "internal error".
func Public(err error) string {
	e := As(err)
	if e == nil || e.Code == Internal {
		return "internal error"
	}
	if e.Rule != "" {
		return e.Rule + ": " + e.Message
	}
	return e.Message
}
