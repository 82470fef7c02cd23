package autoreply

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/services/internal/backoff"
)

// Provider ids this service knows the allowlist rules of.
const (
	ProviderWhatsApp = "whatsapp"
	ProviderTelegram = "telegram"
)

// Defaults of Config.
const (
	DefaultMainKey        = "main"
	DefaultTypingInterval = 5 * time.Second
	DefaultMaxConcurrent  = 8
	DefaultRetryAttempts  = 8
	DefaultAckWait        = 10 * time.Second
	DefaultMaxDeliveries  = 5
	DefaultRetryInitial   = time.Second
	DefaultRetryMax       = time.Minute
)

// Config configures the autoreply service. The zero value works: both providers are
// followed, WhatsApp answers only the owner, Telegram answers nobody, groups need a
// mention.
type Config struct {
	// Providers are the provider ids whose inbound messages are followed: "whatsapp" and/or
	// "telegram". Default both.
	Providers []string
	// MainKey is the session key of direct chats (sessions.mainKey). Default "main".
	MainKey string
	// WhatsAppAllowFrom lists the E.164 numbers (any spacing, with or without "+" or a
	// "whatsapp:" prefix) whose direct messages are answered, or "*" for everyone. Default
	// empty: only the owner (a message to yourself, or one whose sender is the linked
	// number). The owner is always allowed.
	WhatsAppAllowFrom []string
	// TelegramAllowFrom lists the Telegram user or chat ids whose direct messages are
	// answered, or "*" for everyone. Default empty: nobody.
	TelegramAllowFrom []string
	// GroupRequireMention makes WhatsApp group messages wait for a mention of the linked
	// account (or a MentionPatterns match). nil means the default, true; point it at false
	// to answer every group message.
	GroupRequireMention *bool
	// TelegramRequireMention is GroupRequireMention for Telegram groups. nil means true.
	TelegramRequireMention *bool
	// MentionPatterns are regular expressions, matched case-insensitively against a group
	// message's text; a match counts as a mention. Default none.
	MentionPatterns []string
	// LegacyJournalPath is the file where an earlier version kept the messages it had
	// accepted but not answered (<state>/autoreply/pending.json): they are put into the
	// inbound stream once and the file renamed *.migrated. Default "": nothing to migrate.
	LegacyJournalPath string
	// Replicas is the number of JetStream replicas of the inbound stream (bus.replicas).
	// Default 1.
	Replicas int
	// AckWait is how long a message handed to this service may go without word before the
	// stream delivers it again (to a restarted or another copy of the service); while a
	// message is worked on its progress is reported every AckWait/3, so it only passes
	// when the process is gone. It is how long a crashed service's messages wait for the
	// next one. Default 10s.
	AckWait time.Duration
	// MaxDeliveries bounds the deliveries of one message that end without a final outcome
	// (the agent or provider unavailable, the service stopped or crashed while on it): the
	// next delivery only logs it as given up. Default 5.
	MaxDeliveries int
	// RunTimeout is the timeout passed to each agent run, rounded up to whole seconds.
	// Default 0: the agent's own default (agent.timeoutSeconds).
	RunTimeout time.Duration
	// TypingInterval is how often the typing indicator is refreshed while a run goes on.
	// Default 5s.
	TypingInterval time.Duration
	// MaxConcurrent bounds the messages worked on at once; more wait in the inbound stream.
	// The agent service orders the turns of one session itself. Default 8.
	MaxConcurrent int
	// RetryAttempts bounds the attempts of each step that fails in a retryable way (agent or
	// provider not answering, a run lost by the agent, a provider not connected) within one
	// delivery; then the message is handed back to the stream for a later delivery.
	// Default 8.
	RetryAttempts int
	// RunHeartbeat is the agent runs' heartbeat interval (wire.RunWaiter); default
	// wire.RunHeartbeat.
	RunHeartbeat time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between attempts (doubling).
	// Defaults 1s and 1m.
	RetryInitial, RetryMax time.Duration
	// Location is the zone of the envelope's time stamp. Default time.Local.
	Location *time.Location
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	groupMention, telegramMention bool
	patterns                      []*regexp.Regexp
	whatsapp                      allowlist
	telegram                      allowlist
}

// validate applies the defaults to cfg and checks it.
func (cfg Config) validate() (settings, error) {
	s := settings{}
	if len(cfg.Providers) == 0 {
		cfg.Providers = []string{ProviderWhatsApp, ProviderTelegram}
	}
	seen := map[string]bool{}
	for _, p := range cfg.Providers {
		if p != ProviderWhatsApp && p != ProviderTelegram {
			return s, fmt.Errorf("autoreply: unknown provider %q (want %q or %q)", p, ProviderWhatsApp, ProviderTelegram)
		}
		if seen[p] {
			return s, fmt.Errorf("autoreply: provider %q listed twice", p)
		}
		seen[p] = true
	}
	cfg.Providers = append([]string(nil), cfg.Providers...)
	if cfg.MainKey == "" {
		cfg.MainKey = DefaultMainKey
	}
	if strings.TrimSpace(cfg.MainKey) != cfg.MainKey {
		return s, fmt.Errorf("autoreply: MainKey %q has surrounding whitespace", cfg.MainKey)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TypingInterval", &cfg.TypingInterval, DefaultTypingInterval},
		{"RetryInitial", &cfg.RetryInitial, DefaultRetryInitial},
		{"RetryMax", &cfg.RetryMax, DefaultRetryMax},
		{"AckWait", &cfg.AckWait, DefaultAckWait},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return s, fmt.Errorf("autoreply: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.RetryInitial > cfg.RetryMax {
		return s, fmt.Errorf("autoreply: RetryInitial %s exceeds RetryMax %s", cfg.RetryInitial, cfg.RetryMax)
	}
	if cfg.RunTimeout < 0 {
		return s, fmt.Errorf("autoreply: RunTimeout %s is negative", cfg.RunTimeout)
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxConcurrent", &cfg.MaxConcurrent, DefaultMaxConcurrent},
		{"RetryAttempts", &cfg.RetryAttempts, DefaultRetryAttempts},
		{"MaxDeliveries", &cfg.MaxDeliveries, DefaultMaxDeliveries},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return s, fmt.Errorf("autoreply: %s %d is negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s.groupMention = cfg.GroupRequireMention == nil || *cfg.GroupRequireMention
	s.telegramMention = cfg.TelegramRequireMention == nil || *cfg.TelegramRequireMention
	for _, p := range cfg.MentionPatterns {
		re, err := regexp.Compile("(?i)" + p)
		if err != nil {
			return s, fmt.Errorf("autoreply: mention pattern %q: %w", p, err)
		}
		s.patterns = append(s.patterns, re)
	}
	var err error
	if s.whatsapp, err = newAllowlist(cfg.WhatsAppAllowFrom, normE164); err != nil {
		return s, fmt.Errorf("autoreply: WhatsAppAllowFrom: %w", err)
	}
	if s.telegram, err = newAllowlist(cfg.TelegramAllowFrom, normTelegramID); err != nil {
		return s, fmt.Errorf("autoreply: TelegramAllowFrom: %w", err)
	}
	for _, p := range cfg.Providers {
		if _, err := subject.ProviderInbound(p); err != nil {
			return s, fmt.Errorf("autoreply: %w", err)
		}
	}
	s.Config = cfg
	return s, nil
}

// runTimeoutSeconds is RunTimeout as the agent's timeout param (nil: the agent's default).
func (s settings) runTimeoutSeconds() *int64 {
	if s.RunTimeout <= 0 {
		return nil
	}
	secs := int64((s.RunTimeout + time.Second - 1) / time.Second)
	return &secs
}

// backoff is the wait before attempt n+1 after attempt n (n >= 1) failed: RetryInitial
// doubling up to RetryMax.
func (s settings) backoff(n int) time.Duration {
	return backoff.Policy{Initial: s.RetryInitial, Max: s.RetryMax}.Delay(n, nil)
}
