package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/demo"
	"github.com/ccr-infuse/infuse/ledger"
)

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	if err := e.parse(e.flags("migrate"), args); err != nil {
		return err
	}
	l, err := e.ledger(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database up to date; operation %s set up\n", l.OperationID())
	return nil
}

func cmdLedgerSeal(ctx context.Context, e *env, args []string) error {
	if err := e.parse(e.flags("ledger seal"), args); err != nil {
		return err
	}
	l, err := e.ledger(ctx)
	if err != nil {
		return err
	}
	n, err := l.Seal(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "sealed %d entries\n", n)
	return nil
}

// cmdLedgerVerify seals what waits, then recomputes the chain, every balance and the
// invariants. It exits 1 and names the first break when the ledger does not verify.
func cmdLedgerVerify(ctx context.Context, e *env, args []string) error {
	if err := e.parse(e.flags("ledger verify"), args); err != nil {
		return err
	}
	l, err := e.ledger(ctx)
	if err != nil {
		return err
	}
	if _, err := l.Seal(ctx); err != nil {
		return err
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "entries %d, postings %d, sealed %d, waiting %d, chain head %d %s (%.2fs)\n",
		rep.Entries, rep.Postings, rep.Sealed, rep.Waiting, rep.Head.Seq, hex.EncodeToString(rep.Head.Link), rep.Elapsed.Seconds())
	if rep.OK() {
		fmt.Fprintln(e.stdout, "ledger verified: chain, balances and invariants hold")
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(e.stdout, "%s: %s\n", p.Kind, p.Message)
	}
	first := rep.Problems[0]
	return apperr.New(apperr.Invalid, "L7", "ledger does not verify; first break: %s", first.Message)
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("serve")
	addr := fs.String("addr", ":8080", "address to listen on")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if _, port, err := net.SplitHostPort(*addr); err != nil || port == "" {
		fmt.Fprintf(fs.Output(), "serve: --addr %q is not host:port (such as :8080 or 127.0.0.1:8080)\n", *addr)
		return errUsage
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		fmt.Fprintf(fs.Output(), "serve: --addr %q: %q is not a port\n", *addr, port)
		return errUsage
	}
	// The address is taken first: a service that cannot listen starts nothing (no sealer, no
	// scheduler run to record as interrupted).
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return apperr.New(apperr.Invalid, apperr.RuleConfig, "cannot listen on %s: %v", *addr, err)
	}
	defer ln.Close()
	l, err := e.ledger(ctx)
	if err != nil {
		return err
	}
	if err := e.refuseHalfLoadedDemo(ctx); err != nil {
		return err
	}
	log := e.log
	sealer := ledger.NewSealer(l, time.Second, log)
	sealer.Start(ctx)
	defer sealer.Stop()
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	scheduler, err := claims.NewScheduler(svc, claims.SchedulerConfig{Schedule: e.cfg.ClaimSchedule, Logger: log})
	if err != nil {
		return err
	}
	scheduler.Start(ctx)
	defer scheduler.Stop()

	handler, err := e.webHandler(ctx, l, svc, scheduler)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	fmt.Fprintf(e.stdout, "infuse serving on http://%s\n", displayAddr(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return apperr.Wrap("serve", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(e.stdout, "infuse shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return apperr.Wrap("shutdown", err)
	}
	return nil
}

// refuseHalfLoadedDemo refuses to serve a database holding part of the demo (D1): a load that is
// running now, whose claims the scheduler would race, or one stopped part way.
func (e *env) refuseHalfLoadedDemo(ctx context.Context) error {
	state, _, _, err := e.demoState(ctx)
	if err != nil || state != demo.StatePartial {
		return err
	}
	return apperr.New(apperr.Conflict, demo.RuleDemo,
		"the database holds part of the demo: a load is running (serve once it has finished) or stopped part way (%s, then load the demo again)", e.afresh())
}

// displayAddr turns a wildcard listen address into one a person can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return a.String()
}
