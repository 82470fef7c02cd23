//go:build !unix

package agent

import "os/exec"

// setProcessGroup does nothing where process groups are not available.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the started cmd itself.
func killProcessGroup(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
}
