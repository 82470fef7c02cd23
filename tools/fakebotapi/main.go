// Command fakebotapi serves the fake Telegram Bot API of services/telegram/telegramtest on a
// TCP address, for manual runs, measurements and the docker-compose integration stack. It is
// driven over HTTP: POST /_fake/inject adds an update, GET /_fake/sent lists what the bot
// sent, POST /_fake/conflict?on=1 makes getUpdates answer 409.
//
//	go run ./tools/fakebotapi -listen 127.0.0.1:8081 -token 123:abc
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve the Bot API on")
	token := flag.String("token", os.Getenv("TELEGRAM_BOT_TOKEN"), "the bot token the fake accepts")
	flag.Parse()
	if *token == "" {
		fmt.Fprintln(os.Stderr, "fakebotapi: -token (or TELEGRAM_BOT_TOKEN) is required")
		os.Exit(2)
	}
	srv := &http.Server{Addr: *listen, Handler: telegramtest.NewUnstarted(*token), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("fake Bot API on http://%s\n", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "fakebotapi:", err)
		os.Exit(1)
	}
}
