// Package apperr is the application's one error type: every failure a person or a script can
// see carries a stable code, the domain rule it broke (V4, F1, …) and a message written for the
// person who must fix it. Internal detail stays in the wrapped error, for logs only.
//
// A message is also kept as its key and arguments, so that it can be shown in the language a
// person chose. The key is the English format the message was made from (as gettext's msgid,
// or golang.org/x/text/message's key): the command line and the API print the English message
// unchanged, and the web pages look the key up in their catalogue (Format). An argument that
// is itself words rather than data (a role, an action) is a Phrase, looked up too.
package apperr

import (
	"errors"
	"fmt"
	"strings"
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

// The rules every package shares (README, "Rule ids"): input is well formed (M1), a reference
// names something that exists (M2), the service's configuration and set-up are sound (S1), a
// step that met a concurrent change is rolled back whole to be run again (S2), and the files and
// the database server a step needs can be used and have room (S3).
const (
	RuleFormat    = "M1"
	RuleRef       = "M2"
	RuleConfig    = "S1"
	RuleRetry     = "S2"
	RuleResources = "S3"
)

// Error is a failure with a code, the rule it concerns and a human message.
type Error struct {
	Code    Code   // kind of failure
	Rule    string // domain rule id (V4, F1, R9.1, L1 …), empty when none applies
	Message string // for people; never internal detail
	Op      string // operation that failed, for logs ("ledger.Post")
	Err     error  // underlying cause, for logs and errors.Is
	Key     string // the English format of Message, its key in a catalogue; "" when there is none
	Args    []any  // the arguments of Key
	Field   string // the input it is about, by its API name (forms share it); "" for none or several
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

// New returns an error with the given code and rule and a formatted message, keyed by format.
func New(code Code, rule, format string, args ...any) *Error {
	return &Error{Code: code, Rule: rule, Message: fmt.Sprintf(format, args...), Key: format, Args: args}
}

// On sets the input e is about (its API name, which the forms share), so that a form shows the
// message beside that field, and returns e.
func (e *Error) On(field string) *Error {
	e.Field = field
	return e
}

// FieldOf returns the input err is about, "" when it names none.
func FieldOf(err error) string {
	if e := As(err); e != nil {
		return e.Field
	}
	return ""
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
	return &Error{Code: Internal, Message: "internal error", Op: op, Err: err, Key: "internal error"}
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

// Phrase is an argument of a message that is words to translate (a role, an action), not data
// to show as it is. It prints as itself.
type Phrase string

// Text is a message made elsewhere and used as an argument of another (a field's parse error
// inside a row's problem): it prints as its English message, and Format renders it in the
// catalogue's language like the message that holds it.
type Text struct {
	Key     string
	Args    []any
	Message string
}

func (t Text) String() string { return t.Message }

// TextOf returns the message of err as a Text ("internal error" for an error that is not an
// *Error or is internal).
func TextOf(err error) Text {
	e := As(err)
	if e == nil || e.Code == Internal {
		return Text{Key: "internal error", Message: "internal error"}
	}
	return Text{Key: e.Key, Args: e.Args, Message: e.Message}
}

// Texts are messages made elsewhere, one argument that prints them joined by "; ".
type Texts []Text

func (ts Texts) String() string { return ts.join(func(t Text) string { return t.Message }) }

func (ts Texts) join(text func(Text) string) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(text(t))
	}
	return b.String()
}

// Catalogue returns the template of a message key in one language, and whether it has one.
type Catalogue func(key string) (string, bool)

// Format renders the message of key and args through c: c's template of key, with the Phrase,
// Text and Texts arguments rendered through c too. Without a template for key it returns
// fallback, the message as made.
func Format(c Catalogue, key string, args []any, fallback string) string {
	tmpl, ok := c(key)
	if key == "" || !ok {
		return fallback
	}
	text := func(t Text) string { return Format(c, t.Key, t.Args, t.Message) }
	out := make([]any, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case Phrase:
			out[i] = Format(c, string(a), nil, string(a))
		case Text:
			out[i] = text(a)
		case Texts:
			out[i] = a.join(text)
		default:
			out[i] = a
		}
	}
	return fmt.Sprintf(tmpl, out...)
}

// PublicIn is Public in the language of c.
func PublicIn(err error, c Catalogue) string {
	e := As(err)
	if e == nil || e.Code == Internal {
		return Format(c, "internal error", nil, "internal error")
	}
	key := e.Key
	if key == "" && len(e.Args) == 0 {
		// Made without New (a constraint's fixed message): the message is its own key.
		key = e.Message
	}
	msg := Format(c, key, e.Args, e.Message)
	if e.Rule != "" {
		return e.Rule + ": " + msg
	}
	return msg
}
