package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/demo"
	"github.com/ccr-infuse/infuse/match"
)

// matchService opens the match service of the operation.
func (e *env) matchService(ctx context.Context) (*match.Service, error) {
	l, err := e.ledger(ctx)
	if err != nil {
		return nil, err
	}
	p, err := e.programme()
	if err != nil {
		return nil, err
	}
	return match.New(l, p)
}

// openFile opens a file to read, refusing a directory (which Linux opens, to fail at the first
// read) as the missing file is refused: before anything is done.
func openFile(name string) (*os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
		}
		return nil, err
	}
	return f, nil
}

// cmdImport returns the command that imports one kind of CSV file.
func cmdImport(kind string) func(ctx context.Context, e *env, args []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		var as *string
		file, err := fileArg(e, "import "+kind, args, func(fs *flag.FlagSet) {
			as = fs.String("as", "", "email of the user recording the file (default: the system)")
		})
		if err != nil {
			return err
		}
		f, err := openFile(file)
		if err != nil {
			msg := "cannot read " + file
			if _, why, ok := fileProblem(err); ok {
				msg = why // with the reason: missing, not permitted …
			}
			return &apperr.Error{Code: apperr.Invalid, Rule: match.RuleFormat, Message: msg, Err: err}
		}
		defer f.Close()
		m, err := e.matchService(ctx)
		if err != nil {
			return err
		}
		by, err := actor(ctx, m.Ledger(), *as)
		if err != nil {
			return err
		}
		name := filepath.Base(file)
		line := e.progress("import " + kind + " " + name)
		opts := match.ImportOptions{Name: name, Progress: line.report()}
		var res match.ImportResult
		switch kind {
		case "officers":
			res, err = m.ImportOfficers(ctx, by, f, opts)
		case "time":
			res, err = m.ImportTime(ctx, by, f, opts)
		default:
			res, err = m.ImportExpenditure(ctx, by, f, opts)
		}
		line.end()
		if ie := match.AsImportError(err); ie != nil {
			for _, r := range ie.Rows {
				fmt.Fprintln(e.stderr, r.String())
			}
		}
		if err != nil {
			return err
		}
		what := map[string][2]string{"officers": {"rate version", "rate versions"}, "time": {"time entry", "time entries"},
			"expenditure": {"expenditure line", "expenditure lines"}}[kind]
		fmt.Fprintf(e.stdout, "%s: %s read; %s", name, plural(res.Rows, "row", "rows"), plural(res.Written, "new "+what[0], "new "+what[1]))
		if kind == "officers" {
			fmt.Fprintf(e.stdout, " (%s)", plural(res.Officers, "new officer", "new officers"))
		}
		fmt.Fprintf(e.stdout, "; %d already recorded", res.Replayed-res.Withdrawn-res.Repeated)
		if res.Repeated > 0 {
			fmt.Fprintf(e.stdout, "; %s an earlier row of the file, recorded once", plural(res.Repeated, "row repeats", "rows repeat"))
		}
		if res.Withdrawn > 0 {
			fmt.Fprintf(e.stdout, "; %s lines reversed earlier; not recorded again", plural(res.Withdrawn, "row matches", "rows match"))
		}
		fmt.Fprintln(e.stdout)
		if res.Closure > 0 {
			fmt.Fprintf(e.stdout, "note: %s booked in the closure period: the final claim is submitted, so no claim covers them; tell the programme manager\n",
				plural(res.Closure, "new "+what[0]+" is", "new "+what[1]+" are"))
		}
		return nil
	}
}

// progressLine is an import's progress on a terminal: a one-line counter updated in place when
// stderr is a terminal, nothing on a pipe or a file.
type progressLine struct {
	w     io.Writer
	label string
	shown bool
	last  time.Time
}

func (e *env) progress(label string) *progressLine {
	f, ok := e.stderr.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressLine{w: f, label: label}
}

// report is the match.ImportOptions.Progress callback (nil when there is no terminal).
func (l *progressLine) report() func(match.Progress) {
	if l == nil {
		return nil
	}
	return func(p match.Progress) {
		if now := time.Now(); p.Phase == "reading" && now.Sub(l.last) < 100*time.Millisecond {
			return
		}
		l.last = time.Now()
		line := fmt.Sprintf("%s: %s %s rows", l.label, p.Phase, thousands(p.Rows))
		switch {
		case p.Total > 0 && p.Rows == 0: // a phase that reports only its start and end
			line = fmt.Sprintf("%s: %s %s lines", l.label, p.Phase, thousands(p.Total))
		case p.Total > 0:
			line = fmt.Sprintf("%s: %s %s of %s lines", l.label, p.Phase, thousands(p.Rows), thousands(p.Total))
		}
		fmt.Fprintf(l.w, "\r\033[K%s", line)
		l.shown = true
	}
}

// say shows what is being done on the line.
func (l *progressLine) say(doing string) {
	fmt.Fprintf(l.w, "\r\033[K%s: %s…", l.label, doing)
	l.shown = true
}

// end clears the line, if one is shown.
func (l *progressLine) end() {
	if l != nil && l.shown {
		fmt.Fprint(l.w, "\r\033[K")
		l.shown = false
	}
}

// clearing is a writer that clears the progress line before each write.
type clearing struct {
	w    io.Writer
	line *progressLine
}

func (c clearing) Write(b []byte) (int, error) {
	c.line.end()
	return c.w.Write(b)
}

// plural writes n with the singular or plural noun.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func cmdUsersAdd(ctx context.Context, e *env, args []string) error {
	fs := e.flags("users add")
	email := fs.String("email", "", "the user's email, with which they sign in and are named by --as")
	role := fs.String("role", "", "finance_officer, programme_manager, auditor or admin")
	authority := fs.String("authority", "", "a finance officer's authority (GB-XXX)")
	name := fs.String("name", "", "the user's name (default: from the email)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := needFlags(fs, "email", "role"); err != nil {
		return err
	}
	m, err := e.matchService(ctx)
	if err != nil {
		return err
	}
	p := m.Programme()
	n := *name
	if n == "" {
		n = nameFromEmail(*email)
	}
	known := func(a string) bool { _, ok := p.Authority(a); return ok }
	u, err := access.AddUser(ctx, m.Ledger().Pool(), p.OperationID, access.System,
		access.User{Email: *email, Name: n, Role: access.Role(*role), Authority: *authority}, known, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added %s, %s\n", u, u.Name)
	return nil
}

// nameFromEmail makes a name from an email's local part: rhian.evans@… → Rhian Evans.
func nameFromEmail(email string) string {
	local, _, _ := strings.Cut(strings.TrimSpace(email), "@")
	words := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

func cmdUsersList(ctx context.Context, e *env, args []string) error {
	if err := e.parse(e.flags("users list"), args); err != nil {
		return err
	}
	m, err := e.matchService(ctx)
	if err != nil {
		return err
	}
	us, err := access.Users(ctx, m.Ledger().Pool(), m.Programme().OperationID)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tNAME\tROLE\tAUTHORITY\tSTATUS")
	for _, u := range us {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", printable(u.Email), printable(u.Name), u.Role, u.Authority, printable(userStatus(u)))
	}
	return w.Flush()
}

// printable shows text on a terminal as text: a control character (an escape sequence, a line
// break) becomes "?", so that no stored value can act on the terminal or forge a row.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// userStatus is a user's status for people: "active", or when and by whom they were disabled.
func userStatus(u access.User) string {
	if !u.Disabled() {
		return "active"
	}
	return fmt.Sprintf("disabled %s by %s", u.DisabledAt.Format("2006-01-02"), u.DisabledBy)
}

// cmdReverse returns the command that reverses a time entry or an expenditure line.
func cmdReverse(kind string) func(ctx context.Context, e *env, args []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		fs := e.flags(kind + " reverse")
		id := fs.Int64("id", 0, "id of the line to reverse")
		reason := fs.String("reason", "", "why it is reversed (kept with the correction)")
		as := fs.String("as", "", "email of the user correcting (default: the system)")
		if err := e.parse(fs, args); err != nil {
			return err
		}
		if err := needFlags(fs, "id", "reason"); err != nil {
			return err
		}
		m, err := e.matchService(ctx)
		if err != nil {
			return err
		}
		by, err := actor(ctx, m.Ledger(), *as)
		if err != nil {
			return err
		}
		var c match.Correction
		if kind == "time" {
			c, err = m.ReverseTime(ctx, by, *id, *reason)
		} else {
			c, err = m.ReverseExpenditure(ctx, by, *id, *reason)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s %d reversed by ledger entry %d, booked in %s (correction %d); a corrected line can now be recorded\n",
			map[string]string{"time": "time entry", "expenditure": "expenditure line"}[kind], *id, c.EntryID, c.Period, c.ID)
		return nil
	}
}

// cmdDemo loads the demo into an empty database. With --if-empty (make run) a database that
// holds the finished demo, or data of its own, is left alone and served; a part-loaded demo is
// refused either way, since serving it would show a programme that never was.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("demo")
	seed := fs.Uint64("seed", 1, "seed of the generator: the same seed gives the same data")
	ifEmpty := fs.Bool("if-empty", false, "load nothing, and succeed, if the database holds the demo or other data already (make run)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	state, m, a, err := e.demoState(ctx)
	if err != nil {
		return err
	}
	if *ifEmpty {
		switch state {
		case demo.StateLoaded:
			fmt.Fprintln(e.stdout, "the demo is loaded already: no demo data loaded")
			return nil
		case demo.StateData:
			fmt.Fprintln(e.stdout, "the database holds data already: no demo data loaded")
			return nil
		}
	}
	cfg := demo.Config{Match: m, Seed: *seed, Journal: a, Afresh: e.afresh(), Passwords: a, Password: auth.DemoPassword, Log: e.stdout}
	if cfg.AfterPeriod, err = demo.ClaimsStep(m.Ledger(), m.Programme(), generatorVersion, e.stdout); err != nil {
		return err
	}
	sum, err := demo.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted("the demo is part loaded: "+e.afresh()+" before loading it again", err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "demo loaded (seed %d): %d users, %d officers, %d rate versions, %d time entries (£%s), %d expenditure lines (£%s)\n",
		*seed, sum.Users, sum.Officers, sum.RateVersions, sum.TimeEntries, sum.Match.StringFixed(2), sum.ExpenditureLines, sum.Cash.StringFixed(2))
	return nil
}

// demoState is what the database holds of the demo (demo.Inspect), with the services that read it.
func (e *env) demoState(ctx context.Context) (demo.State, *match.Service, *auth.Service, error) {
	m, err := e.matchService(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	a, err := e.auth(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	state, err := demo.Inspect(ctx, m, a)
	return state, m, a, err
}

// afresh tells a person how to start again from an empty database.
func (e *env) afresh() string {
	if e.cfg.DatabaseURL != "" {
		return "point DATABASE_URL at a new, empty database"
	}
	return fmt.Sprintf("stop infuse and remove its data directory %s (INFUSE_DATA)", e.cfg.DataDir)
}

// needFlags reports a missing flag as a usage error.
func needFlags(fs *flag.FlagSet, names ...string) error {
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
