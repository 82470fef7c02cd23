package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"
)

// redacted replaces the bot token wherever it would appear.
const redacted = "<redacted>"

// api returns a telebot client whose every HTTP request ends when ctx ends. telebot's
// methods take no context, so each call gets a cheap offline Bot bound to its context;
// the connection pool is shared.
func (b *Bot) api(ctx context.Context) *tele.Bot {
	client := *b.client
	client.Transport = &ctxTransport{ctx: ctx, base: b.transport}
	bot, err := tele.NewBot(tele.Settings{
		URL:     b.cfg.APIRoot,
		Token:   b.cfg.Token,
		Updates: 1,
		Offline: true, // no getMe here: we call it ourselves with a context
		Client:  &client,
		OnError: func(err error, _ tele.Context) {
			b.log.Debug("telebot error", "err", b.redact(err))
		},
	})
	if err != nil { // cannot happen offline
		panic(fmt.Sprintf("telegram: offline bot: %v", err))
	}
	return bot
}

// ctxTransport ends each request when ctx ends as well as when the request's own
// context (the client's timeout) ends.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, done: func() { stop(); cancel() }}
	return resp, nil
}

// cancelBody releases the request's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	done func()
}

func (c *cancelBody) Close() error {
	err := c.ReadCloser.Close()
	c.done()
	return err
}

// redact returns err with the bot token removed from its text (telebot's transport errors
// contain the request URL, token included). Errors that do not mention the token are
// returned unchanged so that their types survive.
func (b *Bot) redact(err error) error {
	if err == nil || b.cfg.Token == "" || !strings.Contains(err.Error(), b.cfg.Token) {
		return err
	}
	r := &redactedError{msg: strings.ReplaceAll(err.Error(), b.cfg.Token, redacted)}
	// Keep the innermost cause that does not mention the token (context errors, net
	// errors) reachable for errors.Is and errors.As.
	for cause := errors.Unwrap(err); cause != nil; cause = errors.Unwrap(cause) {
		if !strings.Contains(cause.Error(), b.cfg.Token) {
			r.cause = cause
			break
		}
	}
	return r
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// apiError is a Bot API error answer.
type apiError struct {
	code       int
	desc       string
	retryAfter int // seconds, from parameters.retry_after
}

// telebot formats API errors it has no variable for as "telegram: <description> (<code>)".
var apiErrorText = regexp.MustCompile(`^telegram: (.*) \((\d{3})\)$`)

// classify extracts the Bot API error from a telebot error; ok is false for transport
// and other local errors.
func classify(err error) (apiError, bool) {
	var (
		flood tele.FloodError
		group tele.GroupError
		te    *tele.Error
	)
	switch {
	case err == nil:
		return apiError{}, false
	case errors.As(err, &flood):
		return apiError{code: http.StatusTooManyRequests, desc: "Too Many Requests", retryAfter: flood.RetryAfter}, true
	case errors.As(err, &group):
		return apiError{code: http.StatusBadRequest, desc: tele.ErrGroupMigrated.Description}, true
	case errors.As(err, &te):
		return apiError{code: te.Code, desc: te.Description}, true
	}
	if m := apiErrorText.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[2])
		return apiError{code: code, desc: m[1]}, true
	}
	return apiError{}, false
}

// unauthorized reports whether err says the token is not valid (401, or 404 for a token
// the API cannot even parse).
func unauthorized(err error) bool {
	ae, ok := classify(err)
	return ok && (ae.code == http.StatusUnauthorized || ae.code == http.StatusNotFound)
}

// errUnauthorized ends supervision when the token is rejected.
var errUnauthorized = errors.New("unauthorized: the bot token was rejected (401)")

// getMe asks for the bot's own user.
func (b *Bot) getMe(ctx context.Context) (tele.User, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	data, err := b.api(ctx).Raw("getMe", nil)
	if err != nil {
		return tele.User{}, b.redact(err)
	}
	var resp struct {
		Result *tele.User `json:"result"`
	}
	if err := json.Unmarshal(data, &resp); err != nil || resp.Result == nil || resp.Result.Username == "" {
		return tele.User{}, fmt.Errorf("telegram: getMe: unexpected answer")
	}
	return *resp.Result, nil
}
