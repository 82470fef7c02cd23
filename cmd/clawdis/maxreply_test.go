package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

// TestMaxReplyBytesFromConfig: agent.maxReplyBytes reaches the agent service: a command
// printing 100 KB gets a reply cut at the configured 100 bytes, with the truncation line.
func TestMaxReplyBytesFromConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	config := `{agent: {backend: "command", command: ["sh", "-c", "yes 0123456789 | head -c 100000"], maxReplyBytes: 100}}`
	d := startDaemon(t, t.TempDir(), config, nil)
	var out, errb bytes.Buffer
	args := []string{"gateway", "agent", "--message", "flood", "--idempotency-key", "cap-1", "--json", "--url", d.url}
	if code := execute(args, &out, &errb); code != 0 {
		t.Fatalf("agent: exit %d, stderr %q", code, errb.String())
	}
	var res schemas.AgentResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Status != "ok" {
		t.Fatalf("final = %.200s (%v)", out.String(), err)
	}
	if !strings.HasSuffix(res.Text, "\n[reply truncated at 100 bytes]") || len(res.Text) > 100+len("\n[reply truncated at 100 bytes]") {
		t.Fatalf("text of %d bytes ends %q, want it cut at 100 bytes", len(res.Text), res.Text[max(len(res.Text)-40, 0):])
	}
}
