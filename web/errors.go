package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/match"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[apperr.Code]int{
	apperr.Invalid:         http.StatusUnprocessableEntity,
	apperr.NotFound:        http.StatusNotFound,
	apperr.Conflict:        http.StatusConflict,
	apperr.Forbidden:       http.StatusForbidden,
	apperr.Unauthenticated: http.StatusUnauthorized,
	apperr.Locked:          http.StatusLocked,
	apperr.Internal:        http.StatusInternalServerError,
}

// statusClientClosed is the status proxies record for a request its client abandoned.
const statusClientClosed = 499

// statusOfRule overrides the table for rules whose meaning HTTP has a status for.
var statusOfRule = map[string]int{
	auth.RuleThrottle: http.StatusTooManyRequests,
	RuleSize:          http.StatusRequestEntityTooLarge,
	RuleMethod:        http.StatusMethodNotAllowed,
}

// RowError is one rejected row of an import (interfaces.md: row N: <rule id>: <message>).
type RowError struct {
	Row     int    `json:"row"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
	key     string // the English format of Message, which a form may map to its field
}

// errorBody is the JSON of every API error.
type errorBody struct {
	Code      apperr.Code `json:"code"`
	Rule      string      `json:"rule"`
	Message   string      `json:"message"`
	RequestID string      `json:"request_id"`
	Errors    []RowError  `json:"errors,omitempty"` // an import's rejected rows
}

// sized returns err, or the application error of a body over its size limit.
func sized(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apperr.New(apperr.Invalid, RuleSize, "the request is larger than the %d bytes allowed", mbe.Limit)
	}
	return err
}

// classify returns what err means for a response: its code, rule, public message and status.
func classify(err error) (apperr.Code, string, string, int) {
	err = sized(err)
	code := apperr.CodeOf(err)
	rule := apperr.RuleOf(err)
	status, ok := statusOfRule[rule]
	if !ok {
		status = statusOf[code]
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return code, rule, apperr.Public(err), status
}

// renderError is the one error renderer: it logs internal errors in full with the request id,
// and shows people and scripts only the code, rule and public message ("internal error" for
// internal ones). API routes answer JSON; pages answer a page, or send an anonymous person to
// the sign-in page.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	code, rule, msg, status := classify(err)
	if code == apperr.Internal && r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away before the answer was ready (a queued recording among them):
		// nothing failed here and nobody reads the answer, so no error is logged.
		st.status = statusClientClosed
		w.WriteHeader(statusClientClosed)
		s.log.Info("request abandoned by its client", "request_id", st.id, "method", r.Method, "path", r.URL.Path)
		return
	}
	st.status = status
	if text, ok := db.Refusal(err); ok {
		// The service's own checks should have refused this before the database did.
		s.log.Warn("the database refused a write", "request_id", st.id, "method", r.Method, "path", r.URL.Path, "refusal", text)
	}
	if code == apperr.Internal {
		s.log.Error("request failed", "request_id", st.id, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if wantsJSON(r) {
		body := errorBody{Code: code, Rule: rule, Message: msg, RequestID: st.id, Errors: rowErrorsOf(err)}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "900")
		}
		writeJSON(w, status, body)
		return
	}
	if code == apperr.Unauthenticated && st.user == nil && r.URL.Path != "/signin" {
		next := "/"
		if r.Method == http.MethodGet {
			next = r.URL.RequestURI()
		}
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	s.renderPage(w, r, status, "error", err)
}

// wantsJSON reports whether r is an API call (or a script that asked for JSON).
func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" ||
		strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// rowErrorsOf returns the rejected rows an import error carries, if any.
func rowErrorsOf(err error) []RowError {
	ie := match.AsImportError(err)
	if ie == nil {
		return nil
	}
	out := make([]RowError, len(ie.Rows))
	for i, r := range ie.Rows {
		out[i] = RowError{Row: int(r.Row), Rule: r.Rule, Message: r.Message}
	}
	return out
}
