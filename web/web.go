// Package web is the service's HTTP face: the JSON API under /api/v1 (described by
// /api/openapi.json), the server-rendered bilingual UI, health and metrics for operators, and
// the machinery around them — request ids, access logs, security headers, size limits,
// sessions, bearer tokens and CSRF protection. It holds no SQL and no arithmetic: it calls the
// packages that own them (auth, access, match, claims, ledger), and every authorisation
// decision is access.Can's (see authorize).
package web

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

// Default size limits.
const (
	DefaultMaxBody   = 1 << 20  // a JSON or form body: 1 MiB
	DefaultMaxUpload = 20 << 20 // a CSV upload: 20 MiB (100k time entries are ~9 MiB)
)

// Config is what the server needs; cmd wires it.
type Config struct {
	Pool      *pgxpool.Pool
	Logger    *slog.Logger
	Programme *programme.Programme
	Ledger    *ledger.Ledger
	Claims    *claims.Service
	Auth      *auth.Service
	Match     *match.Service  // officers, rates, time, expenditure, corrections, imports
	Scheduler *claims.Metrics // the claim scheduler's counters, for /metrics; may be nil
	// Secure marks cookies Secure and sends HSTS. Set it when the service is reached over TLS
	// (directly or behind a proxy); requests that arrive over TLS get both anyway.
	Secure bool
	// TrustedProxies are the proxies whose X-Forwarded-For gives the caller's address, for
	// sign-in throttling, the audit log and the access log. Without them, the address is the
	// connection's, and behind a proxy every user would share one.
	TrustedProxies []netip.Prefix
	MaxBody        int64 // default DefaultMaxBody
	MaxUpload      int64 // default DefaultMaxUpload
	// AccessLog logs every request at Info (default true through cmd); false logs only errors.
	AccessLog bool
}

// Server is the service's HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route // every registered route, for the OpenAPI document and its test
	metrics *metrics
	pages   *pages
	now     func() time.Time
	// unreadableHop logs, once, a trusted proxy that writes X-Forwarded-For hops that are not
	// addresses: callers behind it then all have the proxy's address.
	unreadableHop sync.Once
}

// New returns the service's HTTP handler. Pool and Logger are required; a server given only
// those serves health, readiness and metrics.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	pg, err := loadPages()
	if err != nil {
		return nil, apperr.Wrap("web.New", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), metrics: newMetrics(), pages: pg, now: time.Now}
	for _, area := range [][]route{s.healthRoutes(), s.apiRoutes(), s.uiRoutes()} {
		for _, rt := range area {
			s.handle(rt)
		}
	}
	s.mux.Handle("/", s.wrap(route{pattern: "/", public: true, ui: true}, s.unrouted))
	return s, nil
}

// routeMethods are the methods the routes use, which unrouted offers in Allow.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unrouted answers what no route takes: 405 with Allow when routes take the path with other
// methods, else 404. ServeMux answers 405 itself only when no pattern matches the path at all,
// and the catch-all "/" (which renders 404s as pages or JSON) matches every path, so the mux is
// asked which patterns would take the path under each other method.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range routeMethods {
		if m == r.Method {
			continue
		}
		if _, pattern := s.mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL}); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return apperr.New(apperr.Invalid, RuleMethod, "%s is not a method of %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
	}
	return noPage(r.URL.Path)
}

// noPage is the answer to a path the service does not serve (W5).
func noPage(path string) error {
	return apperr.New(apperr.NotFound, RulePath, "there is no page at %s", path)
}

// ServeHTTP runs the middleware every request passes through, then the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r)
}
