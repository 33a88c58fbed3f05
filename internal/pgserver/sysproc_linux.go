package pgserver

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// setDeathSignal asks the kernel to send sig to the child when its parent dies, so that a
// service killed with SIGKILL does not leave its PostgreSQL running. Go applies it after the
// credential change, which would otherwise clear it.
func setDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }

// totalMemory is the memory this process may use, in bytes (0 if unknown): the machine's, or
// its control group's limit when that is lower, as in a container.
func totalMemory() uint64 {
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) != nil {
		return 0
	}
	memory := uint64(info.Totalram) * uint64(info.Unit)
	// cgroup v2, then v1; "max" (or v1's huge number for no limit) leaves the machine's.
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if limit, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && limit < memory {
				return limit
			}
			break
		}
	}
	return memory
}
