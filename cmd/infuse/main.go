// Command infuse is the InFuSe grant ledger: one binary for the service and every command an
// operator or a script needs. It reads its configuration once, here, and wires the packages
// together; it holds no business rules.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	_ "time/tzdata" // Europe/London on hosts without zoneinfo

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Exit statuses (interfaces.md): 0 success, 1 a failure the user must fix, 2 bad usage; and,
// where interfaces.md is silent, 130 (128 + SIGINT, as shells report it) for a command stopped
// by Ctrl-C or SIGTERM.
const (
	exitOK          = 0
	exitFail        = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// creators are the commands that may create the embedded cluster in a data directory that has
// none; any other, run from the wrong directory, would quietly work on a new, empty database.
var creators = []string{"serve", "migrate", "demo", "restore"}

// errUsage marks a usage error; its message has been printed with the command's usage.
var errUsage = errors.New("usage")

// command is one subcommand. Its name may have two words ("ledger verify").
type command struct {
	name  string
	args  string
	brief string
	run   func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "[--addr :8080]", "API, UI and claim scheduler", cmdServe},
		{"migrate", "", "apply database migrations and set up the operation", cmdMigrate},
		{"ledger verify", "", "chain, balances and invariants", cmdLedgerVerify},
		{"ledger seal", "", "seal entries waiting for the chain", cmdLedgerSeal},
		{"demo", "[--seed N] [--if-empty]", "load InFuSe with realistic demo data", cmdDemo},
		{"import officers", "FILE.csv [--as EMAIL]", "officers and their rate versions", cmdImport("officers")},
		{"import time", "FILE.csv [--as EMAIL]", "officer time entries", cmdImport("time")},
		{"import expenditure", "FILE.csv [--as EMAIL]", "cash expenditure lines", cmdImport("expenditure")},
		{"time reverse", "--id N --reason R [--as EMAIL]", "reverse a time entry (a corrected line can then be recorded)", cmdReverse("time")},
		{"expenditure reverse", "--id N --reason R [--as EMAIL]", "reverse an expenditure line (a corrected line can then be recorded)", cmdReverse("expenditure")},
		{"users add", "--email E --role R [--authority GB-XXX] [--name N]", "add a user (finance_officer, programme_manager, auditor, admin)", cmdUsersAdd},
		{"users list", "", "list the users", cmdUsersList},
		{"users disable", "--email E", "disable a user (a leaver): ends their sessions and tokens", cmdUsersDisable(true)},
		{"users enable", "--email E", "enable a disabled user again", cmdUsersDisable(false)},
		{"backup", "FILE [--force]", "copy the whole database to a new FILE (pg_dump custom format; --force replaces one)", cmdBackup},
		{"restore", "FILE [--replace]", "replace the database with a backup, then verify the chain", cmdRestore},
		{"claims compile", "--period P [--json] [--as EMAIL]", "compile (or recompile) the draft claim", cmdClaimsCompile},
		{"claims review", "--period P --as EMAIL", "four-eyes review of the draft claim", cmdClaimsReview},
		{"claims submit", "--period P --as EMAIL", "submit the reviewed claim to WEFO (locks the period)", cmdClaimsSubmit},
		{"claims show", "--period P [--json]", "show a claim's figures and findings", cmdClaimsShow},
		{"claims pack", "--period P --out DIR", "write claim.xlsx, claim.pdf and manifest.json", cmdClaimsPack},
		{"claims decide", "--period P --approved AMOUNT [--disallowed AMOUNT --reason R] [--heading H] [--date YYYY-MM-DD] --as EMAIL", "record WEFO's decision on a submitted claim", cmdClaimsDecide},
		{"claims pay", "--period P --amount AMOUNT --date YYYY-MM-DD --as EMAIL", "record WEFO's payment of a claim", cmdClaimsPay},
		{"tokens create", "--email E [--name N]", "create a bearer token for scripts (printed once)", cmdTokensCreate},
		{"users passwd", "--email E", "set a user's password from standard input", cmdUsersPasswd},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// stopSignals are the signals that stop a command cleanly (its embedded cluster stopped, its
// work rolled back): Ctrl-C, SIGTERM, and SIGHUP, which a closed terminal or SSH session sends,
// unless the command was started to ignore it (nohup), which it then goes on ignoring.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "infuse: %s\n", apperr.Public(err))
		return exitUsage
	}
	ctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	e := &env{cfg: cfg, stdout: stdout, stderr: stderr, log: newLogger(stderr, cfg.LogLevel), end: end}
	defer e.close(ctx)

	cmds := commands()
	var cmd *command
	for i := range cmds {
		words := strings.Fields(cmds[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].name {
			if cmd == nil || len(words) > len(strings.Fields(cmd.name)) {
				cmd = &cmds[i]
			}
		}
	}
	if cmd == nil {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			usage(stdout, cmds)
			return exitOK
		}
		usage(stderr, cmds)
		return exitUsage
	}
	e.serving = cmd.name == "serve"
	e.mayCreate = slices.Contains(creators, cmd.name)
	err = cmd.run(ctx, e, args[len(strings.Fields(cmd.name)):])
	if err != nil && ctx.Err() == nil && e.lostCluster(err) {
		// The cluster stopped under the command before its watch ended the command's context.
		err = errClusterGone
	} else if errors.Is(context.Cause(ctx), errClusterGone) && (err != nil || e.serving) {
		// Whatever the command failed with (a refused query), or the service's clean stop, the
		// cause is the cluster it lost. A command that finished before it lost it succeeded.
		err = errClusterGone
	} else if err != nil && ctx.Err() != nil && !errors.Is(err, errInterrupted) {
		// Whatever the command failed with once it was told to stop (a cancelled query, a
		// killed pg_dump) is the interruption, not a fault.
		err = interrupted("", err)
	}
	return e.report(err)
}

// report prints err for a person and returns the exit status it means.
func (e *env) report(err error) int {
	e.line.end()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted):
		e.log.Debug("command interrupted", "err", err)
		fmt.Fprintln(e.stderr, "infuse: interrupted")
		var i *interruption
		if errors.As(err, &i) && i.note != "" {
			fmt.Fprintf(e.stderr, "infuse: %s\n", i.note)
		}
		return exitInterrupted
	}
	err = forPeople(err)
	if apperr.CodeOf(err) == apperr.Internal {
		e.log.Error("command failed", "err", err)
	}
	fmt.Fprintf(e.stderr, "infuse: %s\n", apperr.Public(err))
	return exitFail
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: infuse <command> [flags]")
	fmt.Fprintln(w)
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-45s %s\n", strings.TrimSpace(c.name+" "+c.args), c.brief)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command reads DATABASE_URL; without it, it uses the embedded PostgreSQL in INFUSE_DATA (default ./var).")
}

// flags returns a flag set for a command that prints its usage to the env's stderr: the
// command's line from help, then its flags.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("infuse "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n", commandLine(name))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// commandLine returns the command's line as help shows it: "infuse backup FILE [--force]".
func commandLine(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return strings.TrimSpace("infuse " + c.name + " " + c.args)
		}
	}
	return "infuse " + name
}

// parseFlags parses args with fs. The usage asked for (-h, --help) goes to standard output, as
// help's does, to be read or piped; a flag that is wrong, and the usage after it, to standard
// error.
func (e *env) parseFlags(fs *flag.FlagSet, args []string) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	to := e.stderr
	if errors.Is(err, flag.ErrHelp) {
		to = e.stdout
	}
	_, _ = buf.WriteTo(to)
	return err
}

// parse parses args, turning flag errors into errUsage.
func (e *env) parse(fs *flag.FlagSet, args []string) error {
	if err := e.parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
