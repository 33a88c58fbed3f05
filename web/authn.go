package web

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// Rule ids of this package.
const (
	RuleCSRF   = "W1" // an unsafe request of a cookie session carries the session's CSRF token
	RuleSize   = "W2" // request bodies and uploads have size limits
	RuleBody   = "W3" // a request body is well-formed JSON or form data of the documented shape
	RuleMethod = "W4" // a route answers only its own methods (405, with Allow naming them)
	RulePath   = "W5" // a request names a path of the service
)

// Cookie names.
const (
	sessionCookie = "infuse_session"
	preCookie     = "infuse_pre" // the sign-in form's double-submit CSRF value, before a session exists
	langCookie    = "infuse_lang"
)

// csrfField is the form field, and csrfHeader the header, that carry the CSRF token.
const (
	csrfField  = "_csrf"
	csrfHeader = "X-CSRF-Token"
)

// authenticate finds who is calling: a bearer token (scripts) or a session cookie (people).
// Routes that are not public refuse anonymous callers; unsafe requests of a cookie session must
// carry the session's CSRF token (bearer-token requests are exempt: a browser never adds an
// Authorization header on its own, so they cannot be forged cross-site).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.public && !rt.ui {
		return nil
	}
	st := stateOf(r)
	if s.cfg.Auth == nil {
		if rt.public {
			return nil
		}
		return apperr.New(apperr.Unauthenticated, auth.RuleSession, "sign-in is not configured")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || secret == "" {
			return apperr.New(apperr.Unauthenticated, auth.RuleSession, "the Authorization header must be: Bearer <token>")
		}
		u, id, err := s.cfg.Auth.TokenUser(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			return err
		}
		st.user, st.viaToken, st.tokenID = &u, true, id
		return nil
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		sess, err := s.cfg.Auth.SessionByID(r.Context(), c.Value)
		switch {
		case err == nil:
			st.user, st.session = &sess.User, &sess
		case apperr.CodeOf(err) == apperr.Unauthenticated:
			s.clearCookie(w, r, sessionCookie)
		default:
			return err
		}
	}
	if st.user == nil {
		if rt.public {
			return nil
		}
		return apperr.New(apperr.Unauthenticated, auth.RuleSession, "sign in first")
	}
	if unsafe(r.Method) && st.session != nil {
		got := r.Header.Get(csrfHeader)
		if got == "" {
			// The token is in the form: read it as the handler would, so that a form over its size
			// limit is refused as such (413) rather than as a form without a token.
			if err := parseForm(r); err != nil {
				return err
			}
			got = r.FormValue(csrfField)
		}
		want := st.session.CSRFToken()
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return apperr.New(apperr.Forbidden, RuleCSRF, "the form has expired or did not come from this service: reload the page and try again")
		}
	}
	return nil
}

// multipartMemory is how much of a multipart upload is held in memory; the rest goes to
// temporary files (as net/http's own default).
const multipartMemory = 32 << 20

// parseForm reads the form of r: url-encoded, or multipart for an upload. A body over its size
// limit is refused as the API refuses one (413, W2); any other form that cannot be read is W3.
func parseForm(r *http.Request) error {
	err := r.ParseForm()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		err = r.ParseMultipartForm(multipartMemory)
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return storableForm(r.Form)
	case errors.As(err, &mbe):
		return sized(err)
	}
	return apperr.New(apperr.Invalid, RuleBody, "the form could not be read")
}

// storableForm refuses a form field holding text the database cannot take: bytes that are not
// UTF-8, or a NUL character (M1), which PostgreSQL would refuse with an error people should
// not see, or store as a name nobody can type.
func storableForm(form url.Values) error {
	if k, ok := unstorable(form); ok {
		return apperr.New(apperr.Invalid, match.RuleFormat, "the form holds text that is not valid UTF-8, or a NUL character").On(k)
	}
	return nil
}

// user returns the signed-in user of r. Handlers of non-public routes may rely on it.
func user(r *http.Request) access.User {
	if u := stateOf(r).user; u != nil {
		return *u
	}
	return access.User{}
}

// csrf returns the CSRF token of r's session, "" without one.
func csrf(r *http.Request) string {
	if sess := stateOf(r).session; sess != nil {
		return sess.CSRFToken()
	}
	return ""
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	s.setCookie(w, r, name, "", -1)
}

// authorize is the one way a handler asks whether the caller may do a: access.Can decides.
func authorize(r *http.Request, a access.Action, authority string) error {
	return access.Can(user(r), a, authority)
}
