package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/auth"
	"github.com/ccr-infuse/infuse/claims"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/ledger"
	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/web"
)

// auth opens the sign-in service of the operation.
func (e *env) auth(ctx context.Context) (*auth.Service, error) {
	l, err := e.ledger(ctx)
	if err != nil {
		return nil, err
	}
	return auth.New(l.Pool(), auth.Config{OperationID: l.OperationID(), Logger: e.log})
}

// webHandler wires the HTTP server of serve: API, UI, health and metrics over the operation's
// services. It prints one demo sign-in per role when the demo data is loaded.
func (e *env) webHandler(ctx context.Context, l *ledger.Ledger, svc *claims.Service, sched *claims.Scheduler) (http.Handler, error) {
	p, err := e.programme()
	if err != nil {
		return nil, err
	}
	a, err := e.auth(ctx)
	if err != nil {
		return nil, err
	}
	m, err := match.New(l, p)
	if err != nil {
		return nil, err
	}
	cfg := web.Config{Pool: l.Pool(), Logger: e.log, Programme: p, Ledger: l, Claims: svc, Auth: a, Match: m,
		Secure: e.cfg.Secure, TrustedProxies: e.cfg.TrustedProxies, AccessLog: true}
	if sched != nil {
		cfg.Scheduler = sched.Metrics()
	}
	h, err := web.New(cfg)
	if err != nil {
		return nil, err
	}
	e.printDemoSignIns(ctx, a)
	return h, nil
}

// printDemoSignIns prints, for each role, the first user whose password is the demo password.
func (e *env) printDemoSignIns(ctx context.Context, a *auth.Service) {
	us, err := access.Users(ctx, e.pool, a.OperationID())
	if err != nil {
		return
	}
	seen := map[access.Role]bool{}
	for _, u := range us {
		if seen[u.Role] || u.Disabled() {
			continue
		}
		if ok, err := a.PasswordIs(ctx, u.Email, auth.DemoPassword); err != nil || !ok {
			continue
		}
		if len(seen) == 0 {
			fmt.Fprintln(e.stdout, "demo sign-ins (password "+auth.DemoPassword+"):")
		}
		seen[u.Role] = true
		who := string(u.Role)
		if u.Authority != "" {
			who += " (" + u.Authority + ")"
		}
		fmt.Fprintf(e.stdout, "  %-32s %s\n", who, u.Email)
	}
}

// cmdTokensCreate creates a bearer token for a user and prints it, once.
func cmdTokensCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("tokens create")
	email := fs.String("email", "", "email of the user the token acts as")
	name := fs.String("name", "", "what the token is for (default: token for EMAIL)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "email"); err != nil {
		return err
	}
	a, err := e.auth(ctx)
	if err != nil {
		return err
	}
	secret, t, err := a.CreateToken(ctx, access.System, *email, *name)
	if err != nil {
		return err
	}
	if err := recordConsole(ctx, a, "tokens.create", t.User, map[string]any{"name": t.Name, "id": t.ID}, nil); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, secret)
	fmt.Fprintf(e.stderr, "token %d (%s) acts as %s; it is shown once: keep it now\n", t.ID, t.Name, t.User)
	return nil
}

// cmdUsersPasswd sets a user's password from standard input (the first line).
func cmdUsersPasswd(ctx context.Context, e *env, args []string) error {
	email, err := e.userEmail("users passwd", args)
	if err != nil {
		return err
	}
	pw, err := e.readPassword(ctx, os.Stdin)
	if err != nil {
		return err
	}
	a, err := e.auth(ctx)
	if err != nil {
		return err
	}
	if err := recordConsole(ctx, a, "users.password", access.NormalizeEmail(email), nil,
		a.SetPassword(ctx, access.System, email, pw)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "password set for %s\n", access.NormalizeEmail(email))
	return nil
}

// userEmail parses the arguments of a users command that takes only --email, which it needs.
func (e *env) userEmail(name string, args []string) (string, error) {
	fs := e.flags(name)
	email := fs.String("email", "", "email of the user")
	if err := e.parse(fs, args); err != nil {
		return "", err
	}
	return *email, required(fs, "email")
}

// cmdUsersDisable returns the command that disables a user (disable true) or enables one, as
// the operator at the console, recorded in the audit log.
func cmdUsersDisable(disable bool) func(ctx context.Context, e *env, args []string) error {
	verb, action := "enable", "users.enable"
	if disable {
		verb, action = "disable", "users.disable"
	}
	return func(ctx context.Context, e *env, args []string) error {
		email, err := e.userEmail("users "+verb, args)
		if err != nil {
			return err
		}
		a, err := e.auth(ctx)
		if err != nil {
			return err
		}
		u, err := a.SetDisabled(ctx, access.System, email, disable)
		if err := recordConsole(ctx, a, action, access.NormalizeEmail(email), nil, err); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", u.Email, userStatus(u))
		return nil
	}
}

// recordConsole records in the audit log what the operator at the console did (action on
// target, with its outcome err), and returns err, or the failure to record it.
func recordConsole(ctx context.Context, a *auth.Service, action, target string, detail map[string]any, err error) error {
	xerr := a.Record(ctx, auth.Event{Actor: "system", ActorRole: string(access.SystemRole), Action: action,
		Target: target, Detail: detail, RequestID: "cli", Client: "console"}, err)
	if err != nil {
		return err
	}
	return xerr
}

// readPassword reads a new password from in: at a terminal after a prompt, without echoing it
// (Ctrl-C gives the terminal back as it was), else the first line of a pipe or file.
func (e *env) readPassword(ctx context.Context, in *os.File) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		pw, err := readLine(in)
		if errors.Is(err, io.EOF) {
			return "", apperr.New(apperr.Invalid, auth.RulePassword,
				"no password on standard input: pipe it in (printf '%%s\\n' \"$PASSWORD\" | infuse users passwd …) or run the command at a terminal")
		}
		if err != nil {
			return "", apperr.New(apperr.Invalid, auth.RulePassword, "read the password from standard input: %v", err)
		}
		return pw, nil
	}
	if err := ctx.Err(); err != nil {
		return "", interrupted("no password was set", err)
	}
	// Echo goes off and comes back here, in this goroutine, whatever ends the wait; the
	// goroutine below only reads the line.
	state, err := term.GetState(fd)
	if err != nil {
		return "", apperr.Wrap("read password", err)
	}
	defer term.Restore(fd, state)
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", apperr.Wrap("read password", err)
	}
	tio.Lflag &^= unix.ECHO
	tio.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return "", apperr.Wrap("read password", err)
	}
	fmt.Fprint(e.stderr, "new password (not shown as you type): ")
	type read struct {
		pw  string
		err error
	}
	done := make(chan read, 1)
	go func() {
		pw, err := readLine(in)
		done <- read{pw, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(e.stderr)
		if r.err != nil {
			return "", apperr.New(apperr.Invalid, auth.RulePassword, "read the password at the terminal: %v", r.err)
		}
		return r.pw, nil
	case <-ctx.Done():
		fmt.Fprintln(e.stderr)
		return "", interrupted("no password was set", ctx.Err())
	}
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
