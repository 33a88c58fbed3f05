package web

import (
	"context"
	"net/http"
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/migrate"
)

// healthRoutes are the operators' routes: public, never behind sign-in.
func (s *Server) healthRoutes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", handler: s.healthz, public: true,
			doc: &opDoc{Tag: "operations", Summary: "The process is running", Response: "Status"}},
		{method: "GET", pattern: "/readyz", handler: s.readyz, public: true,
			doc: &opDoc{Tag: "operations", Summary: "The database answers and its schema is current", Response: "Status"}},
		{method: "GET", pattern: "/metrics", handler: s.serveMetrics, public: true,
			doc: &opDoc{Tag: "operations", Summary: "Prometheus metrics (text exposition format)", Produces: []string{"text/plain"}}},
	}
}

// healthz answers while the process runs.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 only when the database answers and its schema is current.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	pending, err := migrate.Pending(ctx, s.cfg.Pool)
	if err == nil {
		err = s.cfg.Pool.Ping(ctx)
	}
	switch {
	case apperr.RuleOf(err) == migrate.RuleNewer:
		s.log.Warn("not ready", "err", err) // every probe: a warning, not an error each time
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "schema of a newer release"})
	case err != nil:
		s.log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
	case pending > 0:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "migrations pending", "pending": pending})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	return nil
}
