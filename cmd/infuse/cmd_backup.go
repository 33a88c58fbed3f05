package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/backup"
	"github.com/ccr-infuse/infuse/ledger"
)

// fileArg parses flags that come before or after one file argument.
func fileArg(e *env, name string, args []string, define func(fs *flag.FlagSet)) (string, error) {
	fs := e.flags(name)
	define(fs)
	var file string
	for len(args) > 0 {
		if err := e.parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err // -h: the usage is printed, and asking for it is no failure
			}
			return "", errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if file != "" {
			fmt.Fprintf(e.stderr, "infuse %s: one FILE, not %q and %q\n", name, file, args[0])
			return "", errUsage
		}
		file, args = args[0], args[1:]
	}
	if file == "" {
		fmt.Fprintf(e.stderr, "usage: %s\n", commandLine(name))
		return "", errUsage
	}
	return file, nil
}

func cmdBackup(ctx context.Context, e *env, args []string) error {
	var opts backup.DumpOptions
	file, err := fileArg(e, "backup", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&opts.Force, "force", false, "replace FILE if it exists (without it, an existing FILE is refused)")
	})
	if err != nil {
		return err
	}
	if err := backup.CheckTarget(file, opts.Force); err != nil { // before starting anything
		return err
	}
	if _, err := e.ledger(ctx); err != nil { // the schema is current and the operation set up
		return err
	}
	url, err := e.databaseURL(ctx)
	if err != nil {
		return err
	}
	if err := backup.Dump(ctx, url, file, opts); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "backed up to %s\n", file)
	return nil
}

// cmdRestore replaces the database with a backup in one transaction, then seals and verifies the
// restored ledger. It refuses a file it cannot read whole, and a database that holds anything
// unless told to replace it.
func cmdRestore(ctx context.Context, e *env, args []string) error {
	var replace bool
	file, err := fileArg(e, "restore", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&replace, "replace", false, "replace a database that already holds data")
	})
	if err != nil {
		return err
	}
	if err := backup.Check(ctx, file); err != nil {
		return err
	}
	url, err := e.databaseURL(ctx)
	if err != nil {
		return err
	}
	if !replace {
		tables, err := backup.Occupied(ctx, url)
		if err != nil {
			return err
		}
		if len(tables) > 0 {
			return apperr.New(apperr.Conflict, backup.RuleBackup, "the database is not empty (tables %s hold rows); stop the service and add --replace to overwrite it",
				strings.Join(tables, ", "))
		}
	}
	if err := backup.Restore(ctx, url, file); err != nil {
		if ctx.Err() != nil { // the restore is one transaction, and had not committed unless it ended just then
			return interrupted("the restore was stopped before it finished: the database is as it was, unless it had just finished; "+
				"infuse ledger verify says what it holds", err)
		}
		if apperr.CodeOf(err) != apperr.Internal {
			return err
		}
		e.log.Error("restore failed", "file", file, "err", err)
		return &apperr.Error{Code: apperr.Invalid, Rule: backup.RuleBackup, Op: "restore", Err: err,
			Message: fmt.Sprintf("restoring %s failed and was rolled back: the database is as it was (the log says why)", file)}
	}
	// The backup is restored: a stop from here on cuts short only its catch-up and check.
	cutShort := func(err error) error {
		if ctx.Err() != nil {
			return interrupted(fmt.Sprintf("%s was restored, but its check was cut short: run infuse migrate, then infuse ledger verify", file), err)
		}
		return err
	}
	p, err := e.programme()
	if err != nil {
		return err
	}
	if _, err := e.open(ctx); err != nil { // migrates a backup made by an older version
		return cutShort(err)
	}
	l, err := ledger.Open(ctx, e.pool, p.OperationID, ledger.WithLogger(e.log))
	if err != nil {
		return cutShort(err)
	}
	if _, err := l.Seal(ctx); err != nil {
		return cutShort(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		return cutShort(err)
	}
	if !rep.OK() {
		return apperr.New(apperr.Invalid, "L7", "restored, but the ledger does not verify; first break: %s", rep.Problems[0].Message)
	}
	fmt.Fprintf(e.stdout, "restored %s: %d entries, chain verified to position %d\n", file, rep.Entries, rep.Head.Seq)
	return nil
}
