// Command scriptagent is the scripted agent of the docker-compose stack: a stand-in for a
// real agent CLI, configured as `agent.command: ["scriptagent", "{{Body}}"]`. The stack's
// images are FROM scratch, so the shell scripts the unit tests use cannot run there.
//
// What it does depends on the message body:
//
//	hang ...   prints "working" and then waits until it is killed (a run in progress)
//	hang-once NAME ...
//	           the first time for NAME (no file NAME in $SCRIPTAGENT_DIR, default
//	           /state/scriptagent): creates it and hangs like hang; afterwards answers like
//	           anything (a run that is killed and then runs again)
//	fail ...   prints "partial", complains on stderr and exits 3
//	anything   streams "echo: <body>" word by word, then exits 0
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// wordPause spaces the streamed words so a client sees several deltas, as from a model.
const wordPause = 20 * time.Millisecond

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	body := strings.Join(args, " ")
	first, rest, _ := strings.Cut(body, " ")
	switch first {
	case "hang":
		return hang(stdout)
	case "hang-once":
		if firstTime(strings.Fields(rest)) {
			return hang(stdout)
		}
	case "fail":
		fmt.Fprintln(stdout, "partial")
		fmt.Fprintln(stderr, "scriptagent: asked to fail")
		return 3
	}
	return echo(body, stdout)
}

// hang prints "working" and waits for SIGTERM or SIGINT.
func hang(stdout io.Writer) int {
	fmt.Fprintln(stdout, "working")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return 1
}

// firstTime reports whether hang-once runs for the first time for the name in args, and
// marks it done. A missing or unusable name counts as not the first time.
func firstTime(args []string) bool {
	if len(args) == 0 || strings.ContainsAny(args[0], `/\.`) {
		return false
	}
	dir := os.Getenv("SCRIPTAGENT_DIR")
	if dir == "" {
		dir = "/state/scriptagent"
	}
	mark := filepath.Join(dir, args[0])
	if _, err := os.Stat(mark); err == nil {
		return false
	}
	if os.MkdirAll(dir, 0o700) != nil || os.WriteFile(mark, nil, 0o600) != nil {
		return false
	}
	return true
}

// echo streams "echo: <body>" word by word.
func echo(body string, stdout io.Writer) int {
	for i, w := range strings.Fields("echo: " + body) {
		if i > 0 {
			time.Sleep(wordPause)
			fmt.Fprint(stdout, " ")
		}
		fmt.Fprint(stdout, w)
	}
	fmt.Fprintln(stdout)
	return 0
}
