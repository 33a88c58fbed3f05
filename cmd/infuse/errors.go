package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/pgserver"
)

// errInterrupted is what a command stopped by Ctrl-C or SIGTERM reports; it exits with
// exitInterrupted rather than as a failure to fix.
var errInterrupted = errors.New("interrupted")

// errClusterGone ends a command whose embedded PostgreSQL stopped under it: the infuse process
// that started it stopped it, or it died (B5).
var errClusterGone = apperr.New(apperr.Conflict, RuleClusterGone,
	"the embedded PostgreSQL this command used has stopped (the infuse process that started it stopped it, or it exited: its log is postgres.log in the data directory); run the command again, which starts it afresh")

// RuleClusterGone: a command whose embedded cluster stops under it ends and says so.
const RuleClusterGone = "B5"

// interrupted returns errInterrupted with a note for the person, saying what the stopped
// command left behind and what to do about it.
func interrupted(note string, err error) error {
	return &interruption{note: note, err: err}
}

// interruption is errInterrupted with a note.
type interruption struct {
	note string
	err  error // the error the command stopped with, for the log
}

func (i *interruption) Error() string { return "interrupted: " + i.note }

func (i *interruption) Is(target error) bool { return target == errInterrupted }

func (i *interruption) Unwrap() error { return i.err }

// forPeople turns a failure that packages report as internal, because they cannot know who
// must fix it, into one a person at the command line can act on: a file or directory that is
// missing, not permitted, of the wrong kind or already there, a database that cannot be
// reached, and one that has run out of disk or other resources. The command line's user is the operator of the machine, so naming the path or the
// server is no leak. Anything else stays internal: logged in full, shown as "internal error".
func forPeople(err error) error {
	if apperr.CodeOf(err) != apperr.Internal {
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleConfig, Op: "connect", Err: err, Message: connectMessage(ce)}
	}
	var se *pgserver.SetupError
	if errors.As(err, &se) {
		return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleConfig, Op: "start embedded PostgreSQL", Err: err, Message: "embedded PostgreSQL: " + se.Msg}
	}
	if code, msg, ok := fileProblem(err); ok {
		return &apperr.Error{Code: code, Rule: apperr.RuleResources, Op: "file", Err: err, Message: msg}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && strings.HasPrefix(pg.Code, "53") {
		// Insufficient resources: a full disk, memory, too many connections. Nothing was
		// kept (the transaction failed); the operator must make room.
		return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleResources, Op: "database", Err: err,
			Message: fmt.Sprintf("the database server ran out of resources (%s, SQLSTATE %s); the step that failed was not kept: make room and run the command again", pg.Message, pg.Code)}
	}
	return err
}

// fileProblem describes a file-system failure a person can fix, naming the path.
func fileProblem(err error) (apperr.Code, string, bool) {
	var op, path string
	var errno error
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &le): // rename, link: the destination is what the person named
		op, path, errno = le.Op, le.New, le.Err
	case errors.As(err, &pe):
		op, path, errno = pe.Op, pe.Path, pe.Err
	default:
		return "", "", false
	}
	code, reason, ok := fileReason(errno)
	if !ok {
		return "", "", false
	}
	verb := "use"
	switch op {
	case "open", "stat", "lstat", "read":
		verb = "read"
	case "mkdir":
		verb = "create the directory"
	case "rename", "link", "write", "createtemp", "sync", "chmod", "truncate":
		verb = "write"
	case "readdir", "readdirent":
		verb = "read the directory"
	}
	return code, fmt.Sprintf("cannot %s %s: %s", verb, path, reason), true
}

// fileReason reads a file-system error number as a person would.
func fileReason(err error) (apperr.Code, string, bool) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return apperr.NotFound, "no such file or directory", true
	case errors.Is(err, fs.ErrExist):
		return apperr.Conflict, "it exists already", true
	case errors.Is(err, fs.ErrPermission):
		return apperr.Invalid, "permission denied", true
	case errors.Is(err, syscall.EISDIR):
		return apperr.Invalid, "it is a directory", true
	case errors.Is(err, syscall.ENOTDIR):
		return apperr.Invalid, "a part of the path is not a directory", true
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return apperr.Invalid, "no space left on the device", true
	case errors.Is(err, syscall.EROFS):
		return apperr.Invalid, "the file system is read-only", true
	case errors.Is(err, syscall.ENAMETOOLONG):
		return apperr.Invalid, "the name is too long", true
	}
	return "", "", false
}

// connectMessage says which server could not be reached and why, without the password.
func connectMessage(ce *pgconn.ConnectError) string {
	where := "PostgreSQL"
	if c := ce.Config; c != nil {
		host := c.Host
		if strings.HasPrefix(host, "/") {
			host = fmt.Sprintf("%s (socket, port %d)", host, c.Port)
		} else {
			host = net.JoinHostPort(host, fmt.Sprint(c.Port))
		}
		where = fmt.Sprintf("PostgreSQL at %s (database %q, user %q)", host, c.Database, c.User)
	}
	return fmt.Sprintf("cannot connect to %s: %s; check DATABASE_URL and that the server is running", where, connectReason(ce))
}

// connectReason reads why a connection failed, by the error's kind, never its text.
func connectReason(err error) string {
	var pg *pgconn.PgError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &pg) && pg.Code == "3D000":
		return "the database does not exist"
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "28"):
		return "the server refused the user or password"
	case errors.As(err, &pg) && pg.Code == "53300":
		return "the server has too many connections"
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "57P"):
		return "the server is starting up or shutting down"
	case errors.As(err, &dns):
		return "the host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist):
		return "nothing is listening there"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "the connection timed out"
	}
	return "the connection failed"
}
