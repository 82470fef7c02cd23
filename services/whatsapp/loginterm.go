package whatsapp

import (
	"fmt"
	"io"
	"time"

	"github.com/mdp/qrterminal/v3"
)

// terminalStages prints a login's stages for `clawdis login`: one line per stage, each QR
// code drawn with half blocks, and a spinner line with the time left while it waits.
type terminalStages struct {
	out io.Writer
	p   *progress
}

func newTerminalStages(out io.Writer, deadline time.Time) *terminalStages {
	return &terminalStages{out: out, p: &progress{out: out, deadline: deadline}}
}

func (t *terminalStages) connecting() { fmt.Fprintln(t.out, "Connecting to WhatsApp…") }

func (t *terminalStages) waitingForCode() {
	fmt.Fprintln(t.out, "Connected; waiting for WhatsApp's login code…")
}

func (t *terminalStages) code(code string, n int, _ time.Duration) {
	t.p.done()
	showQR(t.out, code, n)
}

func (t *terminalStages) scanned() {
	t.p.done()
	fmt.Fprintln(t.out, "QR code scanned; finishing the link…")
}

func (t *terminalStages) linked(number string) {
	t.p.done()
	fmt.Fprintf(t.out, "Linked as %s\n", number)
}

func (t *terminalStages) tick(what string) { t.p.tick(what) }

func (t *terminalStages) end() { t.p.done() }

// showQR renders the n-th code as half-block characters.
func showQR(out io.Writer, code string, n int) {
	if n == 1 {
		fmt.Fprintln(out, "\nQR code shown: scan it in WhatsApp → Settings → Linked devices → Link a device:")
	} else {
		fmt.Fprintln(out, "\nNew QR code shown (the previous one expired): scan it in WhatsApp → Settings → Linked devices → Link a device:")
	}
	qrterminal.GenerateWithConfig(code, qrterminal.Config{
		Level:          qrterminal.L,
		Writer:         out,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      1,
	})
}

// progress draws a spinner line that is rewritten in place.
type progress struct {
	out      io.Writer
	deadline time.Time
	frame    int
	shown    bool
}

func (p *progress) tick(what string) {
	fmt.Fprint(p.out, "\r"+spinnerLine(p.frame, what, time.Until(p.deadline)))
	p.frame++
	p.shown = true
}

// done ends the spinner line so the next output starts on a fresh line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.out, "\r\033[K")
		p.shown = false
	}
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinnerLine is one frame of the progress line, e.g. "⠋ waiting … (2m10s left)".
func spinnerLine(frame int, what string, left time.Duration) string {
	if left < 0 {
		left = 0
	}
	return fmt.Sprintf("%s %s… (%s left)\033[K", spinnerFrames[frame%len(spinnerFrames)], what, left.Round(time.Second))
}
