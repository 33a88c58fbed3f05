package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
	"github.com/ccr-infuse/infuse/reports"
)

// claims opens the claims service of the operation.
func (e *env) claims(ctx context.Context) (*claims.Service, error) {
	l, err := e.ledger(ctx)
	if err != nil {
		return nil, err
	}
	p, err := e.programme()
	if err != nil {
		return nil, err
	}
	opts := []claims.Option{claims.WithLogger(e.log), claims.WithVersion(generatorVersion)}
	if line := e.progress("claims"); line != nil && !e.serving {
		// On a terminal, compiling and rendering say what they do; the line is cleared before
		// anything is printed.
		opts = append(opts, claims.WithProgress(line.say))
		e.stdout, e.line = clearing{w: e.stdout, line: line}, line
	}
	return claims.New(l, p, opts...)
}

// version is this build of infuse.
const version = "1.5"

// generatorVersion names this software in claim packs. Every path that renders a pack (the
// commands, the service and its scheduler, the demo) names the same, so that a claim's pack is
// the same bytes, with the same hashes, whichever rendered it.
const generatorVersion = "infuse " + version

// actor looks up the user named by --as; without one the command acts as the system (the
// operator at the server's command line, who holds the database anyway). An unknown email is
// refused as A1, not M2: nobody may act under that name; a disabled user as AU6.
func actor(ctx context.Context, l *ledger.Ledger, email string) (access.User, error) {
	if email == "" {
		return access.System, nil
	}
	u, err := access.UserByEmail(ctx, l.Pool(), l.OperationID(), email)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound:
		return u, apperr.New(apperr.Forbidden, access.RuleRole, "there is no user %q (add one with infuse users add)", email)
	case err == nil && u.Disabled():
		return u, access.ErrDisabled(u)
	}
	return u, err
}

// waitingFor returns the callback that tells the person at the console that the pack waits for
// another writer of dir to finish.
func (e *env) waitingFor(dir string) func() {
	return func() {
		if e.line != nil {
			e.line.say("waiting for another writer of " + dir + " to finish")
			return
		}
		fmt.Fprintf(e.stderr, "waiting for another writer of %s to finish\n", dir)
	}
}

// required reports a missing flag as a usage error.
func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
			fmt.Fprintf(fs.Output(), "%s: --%s is required\n", fs.Name(), n)
			return errUsage
		}
	}
	return nil
}

func cmdClaimsCompile(ctx context.Context, e *env, args []string) error {
	fs := e.flags("claims compile")
	period := fs.String("period", "", "claim period, such as 2021Q3")
	asJSON := fs.Bool("json", false, "print the claim as JSON (interfaces.md)")
	as := fs.String("as", "", "email of the programme manager compiling (default: the system)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period"); err != nil {
		return err
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	by, err := actor(ctx, svc.Ledger(), *as)
	if err != nil {
		return err
	}
	c, err := svc.CompileWithPack(ctx, *period, by)
	if err != nil {
		return err
	}
	return e.printClaim(ctx, svc, c, *asJSON)
}

func cmdClaimsShow(ctx context.Context, e *env, args []string) error {
	fs := e.flags("claims show")
	period := fs.String("period", "", "claim period, such as 2021Q3")
	asJSON := fs.Bool("json", false, "print the claim as JSON (interfaces.md)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period"); err != nil {
		return err
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	c, err := svc.Claim(ctx, *period)
	if err != nil {
		return err
	}
	return e.printClaim(ctx, svc, c, *asJSON)
}

func cmdClaimsReview(ctx context.Context, e *env, args []string) error {
	return claimStep(ctx, e, "claims review", args, func(svc *claims.Service, period string, by access.User) (*claims.Claim, error) {
		return svc.Review(ctx, period, by)
	})
}

func cmdClaimsSubmit(ctx context.Context, e *env, args []string) error {
	return claimStep(ctx, e, "claims submit", args, func(svc *claims.Service, period string, by access.User) (*claims.Claim, error) {
		return svc.Submit(ctx, period, by)
	})
}

// claimStep runs a lifecycle step that needs only the period and the acting user.
func claimStep(ctx context.Context, e *env, name string, args []string,
	step func(svc *claims.Service, period string, by access.User) (*claims.Claim, error)) error {
	fs := e.flags(name)
	period := fs.String("period", "", "claim period, such as 2021Q3")
	as := fs.String("as", "", "email of the user acting")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period", "as"); err != nil {
		return err
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	by, err := actor(ctx, svc.Ledger(), *as)
	if err != nil {
		return err
	}
	c, err := step(svc, *period, by)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "claim %d for %s is %s (ESF due %s)\n", c.Number(), c.Period.Code, c.Status,
		c.Figures.ESFDue.Period.StringFixed(2))
	return nil
}

func cmdClaimsDecide(ctx context.Context, e *env, args []string) error {
	fs := e.flags("claims decide")
	period := fs.String("period", "", "claim period, such as 2021Q3")
	approved := fs.String("approved", "", "ESF WEFO approved, in pounds")
	disallowed := fs.String("disallowed", "0", "eligible expenditure WEFO disallowed, in pounds")
	reason := fs.String("reason", "", "why WEFO disallowed it (required with a disallowance)")
	heading := fs.String("heading", "", "cost heading of the disallowed expenditure (default other)")
	date := fs.String("date", "", "date of WEFO's decision, YYYY-MM-DD (default today)")
	as := fs.String("as", "", "email of the programme manager recording it")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period", "approved", "as"); err != nil {
		return err
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	d := claims.Decision{Reason: *reason, Heading: *heading}
	if d.Approved, err = amount("--approved", *approved); err != nil {
		return err
	}
	if d.Disallowed, err = amount("--disallowed", *disallowed); err != nil {
		return err
	}
	if d.DecidedOn, err = dateOrToday(svc, *date); err != nil {
		return err
	}
	by, err := actor(ctx, svc.Ledger(), *as)
	if err != nil {
		return err
	}
	c, err := svc.Decide(ctx, *period, d, by)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "claim %d for %s is %s: ESF approved %s, expenditure disallowed %s\n", c.Number(), c.Period.Code, c.Status,
		c.Decision.Approved.StringFixed(2), c.Decision.Disallowed.StringFixed(2))
	return nil
}

func cmdClaimsPay(ctx context.Context, e *env, args []string) error {
	fs := e.flags("claims pay")
	period := fs.String("period", "", "claim period, such as 2021Q3")
	amt := fs.String("amount", "", "ESF WEFO paid, in pounds")
	date := fs.String("date", "", "date of the payment, YYYY-MM-DD")
	as := fs.String("as", "", "email of the programme manager recording it")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period", "amount", "date", "as"); err != nil {
		return err
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	p := claims.Payment{}
	if p.Amount, err = amount("--amount", *amt); err != nil {
		return err
	}
	if p.PaidOn, err = programme.ParseDate(*date); err != nil {
		return err
	}
	by, err := actor(ctx, svc.Ledger(), *as)
	if err != nil {
		return err
	}
	c, err := svc.Pay(ctx, *period, p, by)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "claim %d for %s is %s: %s received on %s\n", c.Number(), c.Period.Code, c.Status,
		c.Payment.Amount.StringFixed(2), c.Payment.PaidOn.Format(programme.DateLayout))
	return nil
}

// cmdClaimsPack writes a claim's pack: the one stored with the claim, byte for byte, when one
// is stored for its current compilation (a submitted claim's, stored at submission; a reviewed
// one's, stored at review; a draft's, stored by the service, its scheduler or the demo as it
// compiled it), so that the files are the ones the web serves and the same hashes; else the
// pack rendered from the ledger at the claim's position.
func cmdClaimsPack(ctx context.Context, e *env, args []string) error {
	fs := e.flags("claims pack")
	period := fs.String("period", "", "claim period, such as 2021Q3")
	out := fs.String("out", "", "directory to write claim.xlsx, claim.pdf and manifest.json into")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "period", "out"); err != nil {
		return err
	}
	if strings.TrimSpace(*out) == "" {
		fmt.Fprintln(fs.Output(), "claims pack: --out names the directory to write the pack into")
		return errUsage
	}
	svc, err := e.claims(ctx)
	if err != nil {
		return err
	}
	c, err := svc.Claim(ctx, *period)
	if err != nil {
		return err
	}
	files, status, err := svc.StoredPackOf(ctx, c)
	switch {
	case err == nil && storedFor(files, c):
		if err := reports.WriteFiles(ctx, *out, files, e.waitingFor(*out)); err != nil {
			return err
		}
		switch {
		case c.Status.Frozen():
			fmt.Fprintf(e.stdout, "wrote the pack submitted for %s to %s\n", *period, *out)
		case status != c.Status:
			fmt.Fprintf(e.stdout, "wrote the pack of claim %d for %s to %s: the one stored when it was %s (it is %s now, with the same figures)\n",
				c.Number(), *period, *out, status, c.Status)
		default:
			fmt.Fprintf(e.stdout, "wrote the pack of claim %d for %s (%s) to %s\n", c.Number(), *period, c.Status, *out)
		}
		return nil
	case err != nil && apperr.CodeOf(err) != apperr.NotFound:
		return err
	}
	p, err := svc.Pack(ctx, *period)
	if err != nil {
		return err
	}
	m, err := reports.WriteDir(ctx, *out, p, e.waitingFor(*out))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote the pack of claim %d for %s (%s) to %s\n", m.ClaimNumber, m.Period, c.Status, *out)
	return nil
}

// storedFor reports whether the stored pack files were rendered from c's current compilation,
// by their manifest: a pack stored for an earlier compilation is not the claim's.
func storedFor(files []reports.File, c *claims.Claim) bool {
	for _, f := range files {
		if f.Name != reports.NameManifest {
			continue
		}
		var m reports.Manifest
		if err := json.Unmarshal(f.Data, &m); err != nil {
			return false
		}
		return m.Period == c.Period.Code && m.CompiledAt.Equal(c.CompiledAt) && m.Position.EntriesSealed == c.Position.Seq
	}
	return false
}

func amount(flagName, s string) (decimal.Decimal, error) {
	d, err := match.ParseMoney(s) // as a CSV file's and the API's amounts are read (R9.1)
	if e := apperr.As(err); e != nil {
		named := *e
		named.Message = flagName + ": " + e.Message
		return decimal.Zero, &named
	}
	return d, err
}

// dateOrToday parses a YYYY-MM-DD date; empty means today in the programme's time zone.
func dateOrToday(svc *claims.Service, s string) (time.Time, error) {
	if s == "" {
		return svc.Today(), nil
	}
	return programme.ParseDate(s)
}

// printClaim prints a claim as the JSON of interfaces.md, or as a summary for people.
// A draft the ledger has moved on from (CL4) is said first, before its figures, which are no
// longer the ledger's: on standard error with --json, so that the JSON stays as documented.
func (e *env) printClaim(ctx context.Context, svc *claims.Service, c *claims.Claim, asJSON bool) error {
	stale, err := svc.Stale(ctx, c)
	if err != nil {
		return err
	}
	if stale {
		w := e.stdout
		if asJSON {
			w = e.stderr
		}
		fmt.Fprintf(w, "note: the ledger has changed since this claim was compiled (%s): these figures are out of date; compile it again "+
			"(infuse claims compile --period %s) before it is reviewed, submitted or its pack written.\n\n", claims.RuleStale, c.Period.Code)
	}
	if asJSON {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return apperr.Wrap("claims", err)
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	return writeClaim(e.stdout, svc.Programme(), c)
}

// writeClaim writes a claim for people: header, figures, match, findings and lifecycle.
func writeClaim(w io.Writer, prog *programme.Programme, c *claims.Claim) error {
	f := &c.Figures
	kind := "interim"
	if c.Period.Final {
		kind = "final"
	}
	fmt.Fprintf(w, "Claim %d (%s) for %s, %s to %s: %s\n", c.Number(), kind, c.Period.Code,
		c.Period.Start.Format(programme.DateLayout), c.Period.End.Format(programme.DateLayout), c.Status)
	fmt.Fprintf(w, "Compiled %s by %s at ledger position %d (entry %d, link %s)\n\n",
		c.CompiledAt.UTC().Format("2006-01-02 15:04:05 UTC"), c.CompiledBy, c.Position.Seq, c.Position.LastEntryID,
		shortHex(c.Position.Link))

	row := func(label, period, cumulative string) {
		fmt.Fprintf(w, "  %-28s %15s %15s\n", label, period, cumulative)
	}
	row("", "this period", "cumulative")
	for _, h := range f.Headings {
		row(h.Code, money(h.Period), money(h.Cumulative))
	}
	row("total eligible", money(f.TotalEligible.Period), money(f.TotalEligible.Cumulative))
	row("ESF due at "+prog.Rate.String(), money(f.ESFDue.Period), money(f.ESFDue.Cumulative))
	row("award cap", "", money(f.AwardCap))
	art69 := "Art 69 cap (warning only)"
	if f.Art69Enforced {
		art69 = "Art 69 cap (enforced)"
	}
	row(art69, "", money(f.Art69Cap))
	fmt.Fprintf(w, "  rounding (R9.3c): exact share %s, floored %s, residual %s\n",
		f.Rounding.ExactShare, f.Rounding.FlooredShare, f.Rounding.Residual)

	fmt.Fprintln(w, "\nMatch by authority")
	fmt.Fprintf(w, "  %-9s %15s %15s %15s %9s %15s\n", "", "this period", "cumulative", "pro-rata target", "variance", "target")
	for _, m := range f.Match {
		fmt.Fprintf(w, "  %-9s %15s %15s %15s %8s%% %15s\n", m.Code, money(m.Period), money(m.Cumulative), money(m.ProRata),
			m.VariancePct.StringFixed(2), money(m.Target))
	}

	fmt.Fprintf(w, "\nLate items: %d\n", f.LateItems)
	fmt.Fprintf(w, "Findings: %d\n", len(f.Findings))
	for _, x := range f.Findings {
		fmt.Fprintf(w, "  %s %-5s %s\n", x.ID, x.Severity, x.Message)
	}
	if c.ReviewedAt != nil {
		fmt.Fprintf(w, "\nReviewed %s by %s\n", c.ReviewedAt.UTC().Format("2006-01-02 15:04 UTC"), c.ReviewedBy)
	}
	if c.SubmittedAt != nil {
		fmt.Fprintf(w, "Submitted %s by %s\n", c.SubmittedAt.UTC().Format("2006-01-02 15:04 UTC"), c.SubmittedBy)
	}
	if d := c.Decision; d != nil {
		fmt.Fprintf(w, "WEFO decided %s: ESF approved %s, expenditure disallowed %s", d.DecidedOn.Format(programme.DateLayout),
			money(d.Approved), money(d.Disallowed))
		if d.Reason != "" {
			fmt.Fprintf(w, " (%s: %s)", d.Heading, d.Reason)
		}
		fmt.Fprintln(w)
	}
	if p := c.Payment; p != nil {
		fmt.Fprintf(w, "Paid %s: %s\n", p.PaidOn.Format(programme.DateLayout), money(p.Amount))
	}
	return nil
}

func money(d decimal.Decimal) string { return d.StringFixed(2) }

func shortHex(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
