package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// randomKey is an idempotency key for a command run without --idempotency-key.
func randomKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}

// dialGateway connects as a cli client within the connection timeout.
func dialGateway(ctx context.Context, cf *clientFlags, onEvent func(schemas.Event)) (*client.Client, error) {
	return dialGatewayWith(ctx, cf, client.Options{OnEvent: onEvent})
}

// dialGatewayWith is dialGateway with more client options (reconnecting, its callbacks).
func dialGatewayWith(ctx context.Context, cf *clientFlags, opts client.Options) (*client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	opts.URL, opts.Token, opts.DialTimeout = cf.url, clientToken(cf.token), cf.timeout
	opts.Client = schemas.ClientInfo{Name: "clawdis-cli", Version: version, Platform: runtime.GOOS, Mode: "cli"}
	c, err := client.Dial(dctx, opts)
	if err != nil {
		return nil, explainDialError(err)
	}
	return c, nil
}

// methodError turns a request error into the CLI's one line.
func methodError(method string, err error, timeout time.Duration) error {
	var re *client.ResponseError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%s failed: %s", method, re.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within %s", method, timeout)
	}
	return fmt.Errorf("%s: %w", method, err)
}

func newSendCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var p schemas.SendParams
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a message through WhatsApp or Telegram",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.To == "" || (p.Message == "" && p.MediaURL == "") {
				return usageError{errors.New("send needs --to, and --message or --media-url")}
			}
			if p.Message == "" {
				// The protocol requires a non-empty message; a blank one is sent as media
				// without a caption.
				p.Message = " "
			}
			if p.IdempotencyKey == "" {
				p.IdempotencyKey = randomKey()
			}
			raw, err := callGateway(cmd.Context(), cf, schemas.MethodSend, p)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, raw)
			}
			var r schemas.SendResult
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("send: unexpected payload: %w", err)
			}
			to := r.ToJID
			if to == "" {
				to = r.ChatID
			}
			_, err = fmt.Fprintf(stdout, "sent via %s to %s (message %s)\n", r.Provider, to, r.MessageID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.To, "to", "", "recipient: E.164 number or group JID (WhatsApp), chat id or @channel (Telegram)")
	f.StringVar(&p.Message, "message", "", "message text (the caption when --media-url is set)")
	f.StringVar(&p.MediaURL, "media-url", "", "http(s) URL or local path of an image, video, audio or document")
	f.StringVar(&p.Provider, "provider", "", "whatsapp (default) or telegram")
	_ = cmd.RegisterFlagCompletionFunc("provider", cobra.FixedCompletions([]string{"whatsapp", "telegram"}, cobra.ShellCompDirectiveNoFileComp))
	f.StringVar(&p.IdempotencyKey, "idempotency-key", "", "key that makes a repeat harmless (random when empty)")
	f.BoolVar(&asJSON, "json", false, "print the payload as JSON")
	return cmd
}

func newAgentCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var p schemas.AgentParams
	var timeoutSeconds int64
	var asJSON, noWait bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent turn and stream its reply",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.Message == "" {
				return usageError{errors.New("agent needs --message")}
			}
			if p.IdempotencyKey == "" {
				p.IdempotencyKey = randomKey()
			}
			if timeoutSeconds > 0 {
				p.Timeout = &timeoutSeconds
			}
			var interrupts <-chan os.Signal
			if !noWait {
				sigs := make(chan os.Signal, 2)
				signal.Notify(sigs, os.Interrupt)
				defer signal.Stop(sigs)
				interrupts = sigs
			}
			return runAgent(cmd.Context(), cf, p, agentOutput{stdout: stdout, stderr: cmd.ErrOrStderr(), asJSON: asJSON, noWait: noWait}, interrupts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Message, "message", "", "the prompt")
	f.StringVar(&p.To, "to", "", "recipient for --deliver")
	f.StringVar(&p.SessionKey, "session-key", "", "conversation key (default the main session)")
	f.StringVar(&p.SessionID, "session-id", "", "use this session id")
	f.StringVar(&p.Thinking, "thinking", "", "off|minimal|low|medium|high (or an alias)")
	_ = cmd.RegisterFlagCompletionFunc("thinking", cobra.FixedCompletions(config.ThinkingLevels, cobra.ShellCompDirectiveNoFileComp))
	f.BoolVar(&p.Deliver, "deliver", false, "send the reply through the channel's provider")
	f.StringVar(&p.Channel, "channel", "", "last (default), whatsapp, telegram or webchat")
	_ = cmd.RegisterFlagCompletionFunc("channel", cobra.FixedCompletions([]string{"last", "whatsapp", "telegram", "webchat"}, cobra.ShellCompDirectiveNoFileComp))
	f.Int64Var(&timeoutSeconds, "timeout-seconds", 0, "the run's deadline (default agent.timeoutSeconds)")
	f.StringVar(&p.IdempotencyKey, "idempotency-key", "", "run id; a repeat gets the same result (random when empty)")
	f.BoolVar(&noWait, "no-wait", false, "print the acknowledgement and exit without waiting")
	f.BoolVar(&asJSON, "json", false, "print the final payload as JSON instead of streaming text")
	return cmd
}

// agentOutput says where and how runAgent prints.
type agentOutput struct {
	stdout, stderr io.Writer
	asJSON, noWait bool
}

// interruptedError ends a command the user interrupted (Ctrl-C): exit status 130.
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }

// exitInterrupted is the conventional exit status after SIGINT (128 + 2).
const exitInterrupted = 130

// runAgent streams the assistant text of the run to stdout as it arrives and waits for the
// final result. The first value on interrupts (Ctrl-C) asks the gateway to abort the run
// (chat.abort) and keeps waiting for its final, which then says aborted; a second one
// returns at once. Either way the command ends with an interruptedError.
func runAgent(ctx context.Context, cf *clientFlags, p schemas.AgentParams, o agentOutput, interrupts <-chan os.Signal) error {
	streamed := make(chan string, 256)
	var sessionKey atomic.Value // the run's session key, from its events
	onEvent := func(ev schemas.Event) {
		if ev.Event != schemas.EventAgent {
			return
		}
		var ae schemas.AgentEventPayload
		if json.Unmarshal(ev.Payload, &ae) != nil || ae.RunID != p.IdempotencyKey {
			return
		}
		if ae.SessionKey != "" {
			sessionKey.Store(ae.SessionKey)
		}
		if ae.Stream != "assistant" || o.asJSON {
			return
		}
		var d struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(ae.Data, &d) == nil && d.Text != "" {
			select {
			case streamed <- d.Text:
			default: // the final text below fills in whatever was not printed
			}
		}
	}
	// Waiting for the final survives a restart of the gateway: the client reconnects and
	// asks again with the same idempotency key, which answers the run's final (SPEC §13).
	connected := make(chan struct{}, 1)
	c, err := dialGatewayWith(ctx, cf, client.Options{OnEvent: onEvent, Reconnect: !o.noWait,
		OnConnect: func(schemas.HelloOK) {
			select {
			case connected <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		return err
	}
	defer c.Close()
	if o.noWait {
		rctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		raw, err := c.Request(rctx, schemas.MethodAgent, p)
		if err != nil {
			return methodError(schemas.MethodAgent, err, cf.timeout)
		}
		return printJSON(o.stdout, raw)
	}
	// The run's own deadline is enforced by the gateway; this only guards against a gateway
	// that stops answering altogether.
	budget := 10 * time.Minute
	if p.Timeout != nil {
		budget = time.Duration(*p.Timeout) * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, budget+time.Minute)
	defer cancel()
	done := make(chan struct{})
	var raw json.RawMessage
	go func() {
		defer close(done)
		raw, err = requestFinalAgain(rctx, c, p, connected)
	}()
	var written strings.Builder
	show := func(s string) {
		_, _ = io.WriteString(o.stdout, s)
		written.WriteString(s)
	}
	interrupted := false
	abortDone := make(chan error, 1)
	for {
		select {
		case s := <-streamed:
			show(s)
			continue
		case <-interrupts:
			if interrupted {
				return exitNow(p.IdempotencyKey)
			}
			interrupted = true
			fmt.Fprintf(o.stderr, "\naborting run %s (Ctrl-C again to exit now)\n", p.IdempotencyKey)
			key, _ := sessionKey.Load().(string)
			go func() {
				abortDone <- abortRun(rctx, c, cf.timeout, cmp.Or(p.SessionKey, key, mainSessionKey), p.IdempotencyKey)
			}()
			continue
		case aerr := <-abortDone:
			if aerr != nil {
				fmt.Fprintf(o.stderr, "%s\n", aerr)
			}
			continue
		case <-done:
			if interrupted && len(interrupts) > 0 {
				return exitNow(p.IdempotencyKey) // a second Ctrl-C came with the final
			}
		}
		break
	}
	for len(streamed) > 0 { // events that arrived just before the final
		show(<-streamed)
	}
	if err != nil {
		if written.Len() > 0 {
			_, _ = fmt.Fprintln(o.stdout)
		}
		return methodError(schemas.MethodAgent, err, budget)
	}
	var res schemas.AgentResult
	decoded := json.Unmarshal(raw, &res) == nil
	if o.asJSON {
		if err := printJSON(o.stdout, raw); err != nil {
			return err
		}
	} else if decoded {
		// Print what the stream did not show: all of it for a remembered result, the tail
		// when the last events were still queued behind the final.
		shown := strings.TrimSpace(written.String())
		if rest, ok := strings.CutPrefix(res.Text, shown); ok {
			_, _ = io.WriteString(o.stdout, rest)
		}
		if _, err := fmt.Fprintln(o.stdout); err != nil {
			return err
		}
	}
	if res.Status != schemas.RunAborted {
		return nil
	}
	if interrupted {
		return interruptedError{fmt.Sprintf("agent run %s aborted", res.RunID)}
	}
	return fmt.Errorf("agent run %s was aborted", res.RunID)
}

// requestFinalAgain sends the agent request p and waits for its final; when the connection
// drops first (the gateway restarts) it sends p again, with the same idempotency key, once
// the client has reconnected: a run still going answers its final when it ends, a finished
// one its remembered final. It stops when ctx ends.
func requestFinalAgain(ctx context.Context, c *client.Client, p schemas.AgentParams, connected <-chan struct{}) (json.RawMessage, error) {
	for {
		raw, err := c.RequestFinal(ctx, schemas.MethodAgent, p, nil)
		if !errors.Is(err, client.ErrDisconnected) {
			return raw, err
		}
		select {
		case <-connected:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (the gateway did not come back before the run's deadline)", err)
		}
	}
}

// exitNow is the error of a second interrupt: the command ends without the run's final.
func exitNow(runID string) error {
	return interruptedError{fmt.Sprintf("interrupted; run %s may still be stopping", runID)}
}

// mainSessionKey is the gateway's default main session key: the session of a run whose
// key the CLI did not give and has not learnt from the run's events yet (a queued run).
const mainSessionKey = "main"

// abortRun asks the gateway to abort run runID of session key.
func abortRun(ctx context.Context, c *client.Client, timeout time.Duration, key, runID string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.Request(ctx, schemas.MethodChatAbort, schemas.ChatAbortParams{SessionKey: key, RunID: runID})
	if err != nil {
		return methodError(schemas.MethodChatAbort, err, timeout)
	}
	return nil
}
