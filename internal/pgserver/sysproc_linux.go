package pgserver

import "syscall"

// setDeathSignal asks the kernel to send sig to the child when its parent dies, so that a
// service killed with SIGKILL does not leave its PostgreSQL running. Go applies it after the
// credential change, which would otherwise clear it.
func setDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }

// totalMemory is the machine's memory in bytes, 0 if unknown.
func totalMemory() uint64 {
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) != nil {
		return 0
	}
	return uint64(info.Totalram) * uint64(info.Unit)
}
