package agent

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"strings"
)

// Placeholders of agent.command.
const (
	phBody       = "{{Body}}"
	phBodyFile   = "{{BodyFile}}"
	phSessionID  = "{{SessionId}}"
	phSessionKey = "{{SessionKey}}"
	phFrom       = "{{From}}"
	phThinking   = "{{Thinking}}"
)

// maxArgLen is the longest single argument Linux passes to a program: MAX_ARG_STRLEN is
// 32 pages (128 KiB), the terminating NUL included.
const maxArgLen = 128<<10 - 1

// fillArgv fills the placeholders of every argument of argv for turn t. When an argument
// uses {{BodyFile}} the prompt is written to a temporary file (0600) named by it, removed
// by cleanup; a prompt too long for one argument then fills {{Body}} with nothing, the
// command reading it from the file. Without {{BodyFile}}, an argument that would be too
// long fails with an error saying which placeholder made it so (and, for {{Body}}, to use
// {{BodyFile}}). cleanup is never nil.
func fillArgv(argv []string, t *turn) (out []string, cleanup func(), err error) {
	cleanup = func() {}
	usesFile := false
	for _, a := range argv {
		usesFile = usesFile || strings.Contains(a, phBodyFile)
	}
	path := ""
	if usesFile {
		if path, err = writeBodyFile(t.Prompt); err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { _ = os.Remove(path) }
	}
	values := map[string]string{
		phBody: t.Prompt, phBodyFile: path, phSessionID: t.SessionID, phSessionKey: t.SessionKey,
		phFrom: t.From, phThinking: t.Thinking,
	}
	out = make([]string, len(argv))
	for i, a := range argv {
		out[i] = fillOnce(a, values)
		if len(out[i]) <= maxArgLen {
			continue
		}
		if strings.Contains(a, phBody) && usesFile {
			noBody := maps.Clone(values)
			noBody[phBody] = ""
			if out[i] = fillOnce(a, noBody); len(out[i]) <= maxArgLen {
				continue
			}
		}
		cleanup()
		return nil, func() {}, tooLong(i, a, values, usesFile)
	}
	return out, cleanup, nil
}

// fillOnce replaces every placeholder of a by its value in one pass, so that a value that
// happens to contain a placeholder is kept as it is.
func fillOnce(a string, values map[string]string) string {
	pairs := make([]string, 0, 2*len(values))
	// {{BodyFile}} before {{Body}}: the replacer tries the old strings in order.
	for _, ph := range []string{phBodyFile, phBody, phSessionID, phSessionKey, phFrom, phThinking} {
		pairs = append(pairs, ph, values[ph])
	}
	return strings.NewReplacer(pairs...).Replace(a)
}

// tooLong is the error of argument i (template a) whose filled value exceeds maxArgLen:
// it names the placeholder whose value made it so, and {{BodyFile}} when that is the body.
func tooLong(i int, a string, values map[string]string, usesFile bool) error {
	if strings.Contains(a, phBody) && !usesFile {
		noBody := maps.Clone(values)
		noBody[phBody] = ""
		if len(fillOnce(a, noBody)) <= maxArgLen {
			return fmt.Errorf("agent command: the message is %d bytes, too long for one argument through %s "+
				"(at most %d bytes); put %s in agent.command to receive it through a file",
				len(values[phBody]), phBody, maxArgLen, phBodyFile)
		}
	}
	longest := ""
	for _, ph := range []string{phSessionID, phSessionKey, phFrom, phThinking} {
		if strings.Contains(a, ph) && (longest == "" || len(values[ph]) > len(values[longest])) {
			longest = ph
		}
	}
	if longest == "" {
		return fmt.Errorf("agent command: argument %d is longer than %d bytes", i, maxArgLen)
	}
	return fmt.Errorf("agent command: argument %d is too long for one argument (at most %d bytes) "+
		"once %s is filled in (%d bytes)", i, maxArgLen, longest, len(values[longest]))
}

// writeBodyFile writes the prompt to a new temporary file and returns its path.
func writeBodyFile(prompt string) (string, error) {
	f, err := os.CreateTemp("", "clawdis-body-*.txt")
	if err != nil {
		return "", fmt.Errorf("agent command: create the %s file: %w", phBodyFile, err)
	}
	_, werr := f.WriteString(prompt)
	if err := cmp.Or(werr, f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("agent command: write the %s file: %w", phBodyFile, err)
	}
	return f.Name(), nil
}
