package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/nats-io/nats.go"
)

func TestSessionsSource(t *testing.T) {
	const store = `{
		"main": {"sessionId": "m", "updatedAt": 1000, "thinkingLevel": "low", "lastChannel": "whatsapp"},
		"group:a@g.us": {"sessionId": "ga", "updatedAt": 5000},
		"group:b@g.us": {"sessionId": "gb", "updatedAt": 4000},
		"c": {"sessionId": "c", "updatedAt": 3000},
		"d": {"sessionId": "d", "updatedAt": 3000},
		"e": {"sessionId": "e", "updatedAt": 2000},
		"f": {"sessionId": "f"}
	}`
	summary := wire.SessionsSummary{Path: "/elsewhere", Count: 42, Sessions: []wire.SessionInfo{
		{Key: "old", SessionID: "o", UpdatedAt: 10},
		{Key: "new", SessionID: "n", UpdatedAt: 20, ThinkingLevel: "high"},
	}}
	tests := []struct {
		name      string
		file      string // "" = no file
		path      bool   // whether Config.SessionsPath is set
		responder bool   // whether a sessions service answers
		reads     int
		wantCount int
		wantKeys  []string
		wantWarns int
	}{
		{"no path", "", false, false, 1, 0, nil, 0},
		{"missing file", "", true, false, 2, 0, nil, 0},
		{"file fallback", store, true, false, 2, 7, []string{"group:a@g.us", "group:b@g.us", "c", "d", "e"}, 0},
		{"corrupt file warns once", `{"main": {"sessionId": `, true, false, 3, 0, nil, 1},
		{"wrong types are corrupt", `{"main": {"updatedAt": "yesterday"}}`, true, false, 2, 0, nil, 1},
		{"responder preferred over file", store, true, true, 1, 42, []string{"new", "old"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t)
			if tt.responder {
				nc := h.bus.Conn("fake-sessions")
				_, err := nc.Subscribe(subject.SessionsSummary, func(m *nats.Msg) {
					var req sessionsRequest
					if err := json.Unmarshal(m.Data, &req); err != nil || req.Limit != recentLimit {
						t.Errorf("sessions request body %s, want limit %d", m.Data, recentLimit)
					}
					data, _ := json.Marshal(summary)
					_ = m.Respond(data)
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			var cfg Config
			if tt.path {
				cfg.SessionsPath = filepath.Join(t.TempDir(), "sessions.json")
				if tt.file != "" {
					if err := os.WriteFile(cfg.SessionsPath, []byte(tt.file), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			logs := &warnLog{}
			s, err := New(cfg, h.bus.Conn("health"), slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			var view sessionsView
			for range tt.reads {
				view = s.prober.sessions(context.Background())
			}
			if view.count != tt.wantCount {
				t.Errorf("count = %d, want %d", view.count, tt.wantCount)
			}
			var keys []string
			for _, r := range view.recent {
				keys = append(keys, r.Key)
			}
			if !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("recent keys = %q, want %q", keys, tt.wantKeys)
			}
			if got := logs.count(); got != tt.wantWarns {
				t.Errorf("%d warnings, want %d", got, tt.wantWarns)
			}
		})
	}
}

func TestSessionsFileRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.json")
	logs := &warnLog{}
	f := &sessionsFile{path: path, log: slog.New(logs)}
	steps := []struct {
		content   string
		wantCount int
		wantWarns int
	}{
		{`not json`, 0, 1},
		{`{"a": {"sessionId": "1", "updatedAt": 1}}`, 1, 1},
		{`{"a": {"sessionId": "1", "updatedAt": 1}, "b": {"sessionId": "2", "updatedAt": 2}}`, 2, 1},
		{`[1, 2]`, 0, 2},
	}
	for i, st := range steps {
		if err := os.WriteFile(path, []byte(st.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := f.read().count; got != st.wantCount {
			t.Errorf("step %d: count = %d, want %d", i, got, st.wantCount)
		}
		if got := logs.count(); got != st.wantWarns {
			t.Errorf("step %d: %d warnings, want %d", i, got, st.wantWarns)
		}
	}
}
