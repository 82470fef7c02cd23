package main

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCARootsWithoutSystemRoots: in a FROM scratch image there are no system CA roots; the
// binary must still have a root pool (the compiled-in fallback) or no TLS connection works.
// The check runs in a child process whose environment hides the system roots, because Go
// loads them once per process.
func TestCARootsWithoutSystemRoots(t *testing.T) {
	if os.Getenv("CLAWDIS_TEST_NO_SYSTEM_ROOTS") == "1" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			t.Fatalf("SystemCertPool: %v", err)
		}
		if pool.Equal(x509.NewCertPool()) {
			t.Fatal("no CA roots without system roots: the fallback roots are not compiled in")
		}
		return
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCARootsWithoutSystemRoots$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CLAWDIS_TEST_NO_SYSTEM_ROOTS=1", "SSL_CERT_FILE="+empty, "SSL_CERT_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child without system roots: %v\n%s", err, out)
	}
}
