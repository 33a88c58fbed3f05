// Package durable makes what the service writes to files survive a crash.
package durable

import (
	"errors"
	"os"
	"syscall"
)

// SyncDir makes the names created or renamed in dir durable: a file synced and then renamed
// into place is not found after a crash until its directory is synced too. A file system that
// cannot sync a directory is left at that; the files themselves are synced by their writers.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}
