// Command scriptagent is the scripted agent of the docker-compose stack: a stand-in for a
// real agent CLI, configured as `agent.command: ["scriptagent", "{{Body}}"]`. The stack's
// images are FROM scratch, so the shell scripts the unit tests use cannot run there.
//
// What it does depends on the message body:
//
//	hang ...   prints "working" and then waits until it is killed (a run in progress)
//	fail ...   prints "partial", complains on stderr and exits 3
//	anything   streams "echo: <body>" word by word, then exits 0
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
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
	switch first, _, _ := strings.Cut(body, " "); first {
	case "hang":
		fmt.Fprintln(stdout, "working")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return 1
	case "fail":
		fmt.Fprintln(stdout, "partial")
		fmt.Fprintln(stderr, "scriptagent: asked to fail")
		return 3
	}
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
