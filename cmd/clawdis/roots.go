package main

// The fallback CA roots are used only when the system has none, as in the FROM scratch
// image: the Telegram Bot API, WhatsApp and an OpenAI-compatible backend all need TLS.
import _ "golang.org/x/crypto/x509roots/fallback"
