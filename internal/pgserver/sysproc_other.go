//go:build unix && !linux

package pgserver

import "syscall"

// setDeathSignal does nothing: only Linux (and FreeBSD, not wired here) has a parent-death
// signal, so elsewhere a killed parent leaves the postmaster running until the next Start
// attaches to it.
func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

// totalMemory is not known here: sharedBuffers keeps PostgreSQL's default.
func totalMemory() uint64 { return 0 }
