package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child server end when the bench process dies,
// however it dies, so that no xchatd is left running.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
