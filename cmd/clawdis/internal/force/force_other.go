//go:build !linux

package force

// Listeners returns the processes with a TCP socket listening on port, IPv4 or IPv6, on any
// address, sorted by pid. Off Linux it runs `lsof -nP -iTCP:<port> -sTCP:LISTEN -Fpc`, which
// must be installed.
func Listeners(port int) ([]Process, error) {
	return lsofListeners(port)
}
