package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/db"
	"github.com/ccr-infuse/infuse/match"
)

// route is one entry of a route list: a method pattern, its handler, and what the middleware
// and the OpenAPI document need to know about it.
type route struct {
	method  string // GET, POST, …; "" only for the catch-all
	pattern string // the path pattern, with {wildcards}
	handler func(w http.ResponseWriter, r *http.Request) error
	public  bool // served to anonymous callers (sign-in, health, assets)
	ui      bool // an HTML page: errors render as pages, sign-in redirects
	upload  bool // accepts a multipart upload up to MaxUpload
	// action is what the caller's role must be allowed (access.Can, for any authority) before
	// the handler runs; the handler then decides for the authority concerned. "" lets every
	// signed-in user through (the handler decides, or the route is everyone's: sign-out).
	action access.Action
	doc    *opDoc
}

// state is what the middleware learns about a request, shared with the layers inside it.
type state struct {
	id       string
	route    string
	status   int
	user     *access.User
	session  *auth.Session // nil for bearer tokens and anonymous callers
	viaToken bool
	tokenID  int64 // the bearer token's id, when viaToken
	lang     string
	client   string
}

type stateKey struct{}

func stateOf(r *http.Request) *state {
	if st, ok := r.Context().Value(stateKey{}).(*state); ok {
		return st
	}
	return &state{lang: "en"}
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// clientAddr is the caller's address. X-Forwarded-For is read only when the connection comes
// from a proxy of cfg.TrustedProxies (throttling by a header any caller writes would be no
// throttling): the address is then the right-most one of the header that is not such a proxy,
// the one the outermost trusted proxy saw. What lies to its left, the caller wrote.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.cfg.TrustedProxies) == 0 || !s.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		a, ok := hopAddr(hop)
		if !ok {
			// A trusted proxy writes addresses: this is not one, so the hops to its right
			// are all that can be believed, and the last of them is a proxy.
			s.unreadableHop.Do(func() {
				if s.log != nil {
					s.log.Warn("a trusted proxy sent an X-Forwarded-For hop that is not an address: the callers behind it share its address for sign-in throttling and the audit log",
						"proxy", host, "hop", db.Clip(hop, 100))
				}
			})
			return host
		}
		if !s.trustedAddr(a) {
			return a.Unmap().String()
		}
		host = a.Unmap().String()
	}
	return host
}

// hopAddr reads a hop of X-Forwarded-For: an address, or an address with a port (1.2.3.4:5678,
// [2001:db8::1]:5678), as some proxies write them.
func hopAddr(hop string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// trusted reports whether addr is the address of a proxy of cfg.TrustedProxies.
func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && s.trustedAddr(a)
}

func (s *Server) trustedAddr(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// serve is the outermost layer: request id, security headers, panic recovery, access log and
// metrics.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &state{id: newRequestID(), client: s.clientAddr(r), lang: langOf(r)}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	sw := &statusWriter{ResponseWriter: w}
	h := w.Header()
	h.Set("X-Request-Id", st.id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	if s.secure(r) {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			err := apperr.Wrap("web.panic", fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			s.renderError(sw, r, err)
		}
		elapsed := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := st.route
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(r.Method, route, status, elapsed)
		if s.cfg.AccessLog || status >= 500 {
			user := ""
			if st.user != nil {
				user = st.user.Email
			}
			s.log.Info("http request", "request_id", st.id, "method", r.Method, "path", r.URL.Path, "route", route,
				"status", status, "bytes", sw.bytes, "duration_ms", float64(elapsed.Microseconds())/1000, "user", user,
				"client", st.client)
		}
	}()
	s.mux.ServeHTTP(sw, r)
}

func (s *Server) secure(r *http.Request) bool { return s.cfg.Secure || r.TLS != nil }

// unsafe reports whether a method may change something (RFC 9110 §9.2.1).
func unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// handle registers rt on the mux and remembers it.
func (s *Server) handle(rt route) {
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt, rt.handler))
}

// wrap is the per-route layer: size limits, authentication, CSRF, and the one error renderer.
func (s *Server) wrap(rt route, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	name := strings.TrimSpace(rt.method + " " + rt.pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.route = name
		limit := s.cfg.MaxBody
		if rt.upload {
			limit = s.cfg.MaxUpload
		}
		if r.ContentLength > limit {
			s.renderError(w, r, apperr.New(apperr.Invalid, RuleSize, "the request is larger than the %d bytes allowed", limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := s.authenticate(w, r, rt); err != nil {
			s.renderError(w, r, err)
			return
		}
		if !rt.public && rt.action != "" {
			if err := authorize(r, rt.action, ""); err != nil {
				s.renderError(w, r, err)
				return
			}
		}
		if !rt.public {
			w.Header().Set("Cache-Control", "no-store")
		}
		if err := storableRequest(r.URL); err != nil {
			s.renderError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			s.renderError(w, r, err)
		}
	})
}

// storableRequest refuses an address whose path or query holds text the database cannot take:
// bytes that are not UTF-8, or a NUL character (M1). Path values and filters reach queries,
// where PostgreSQL would refuse it with an error people should not see.
func storableRequest(u *url.URL) error {
	if _, ok := unstorable(u.Query()); ok || !db.Storable(u.Path) {
		return apperr.New(apperr.Invalid, match.RuleFormat, "the address holds text that is not valid UTF-8, or a NUL character")
	}
	return nil
}

// unstorable returns the first name (in no set order) of values whose name or a value the
// database cannot take as text (db.Storable).
func unstorable(values url.Values) (string, bool) {
	for k, vs := range values {
		if !db.Storable(k) {
			return k, true
		}
		for _, v := range vs {
			if !db.Storable(v) {
				return k, true
			}
		}
	}
	return "", false
}
