package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// call posts a JSON Bot API request and decodes the answer.
func call(t *testing.T, url string, body any) (int, apiResult) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res apiResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return resp.StatusCode, res
}

func TestControlEndpointsAndErrors(t *testing.T) {
	s := New("123:abc")
	defer s.Close()

	resp, err := http.Post(s.URL+"/_fake/inject", "application/json",
		strings.NewReader(`{"chatId":-100555,"chatType":"supergroup","fromId":7,"text":"hi"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("inject: %v %v", err, resp)
	}
	_ = resp.Body.Close()
	status, res := call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{"offset": "0", "timeout": "0"})
	updates, _ := json.Marshal(res.Result)
	if status != http.StatusOK || !strings.Contains(string(updates), `"text":"hi"`) ||
		!strings.Contains(string(updates), `"type":"supergroup"`) {
		t.Errorf("getUpdates %d %s", status, updates)
	}

	if status, res := call(t, s.URL+"/bot123:abc/sendMessage", map[string]string{"chat_id": "42", "text": "yo"}); status != http.StatusOK || !res.OK {
		t.Errorf("sendMessage %d %+v", status, res)
	}
	r, err := http.Get(s.URL + "/_fake/sent")
	if err != nil {
		t.Fatal(err)
	}
	var sent []Sent
	_ = json.NewDecoder(r.Body).Decode(&sent)
	_ = r.Body.Close()
	if len(sent) != 1 || sent[0].Text != "yo" || sent[0].Chat != 42 {
		t.Errorf("sent %+v", sent)
	}

	for _, tt := range []struct {
		name, path string
		body       any
		code       int
	}{
		{"wrong token", "/bot999:zzz/getMe", nil, 401},
		{"unknown method", "/bot123:abc/launchRocket", nil, 404},
		{"unknown chat", "/bot123:abc/sendMessage", map[string]string{"chat_id": "nobody", "text": "x"}, 400},
		{"empty text", "/bot123:abc/sendMessage", map[string]string{"chat_id": "42"}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, res := call(t, s.URL+tt.path, tt.body)
			if status != tt.code || res.OK || res.ErrorCode != tt.code || res.Description == "" {
				t.Errorf("%d %+v, want error %d", status, res, tt.code)
			}
		})
	}
	s.SetConflict(true)
	if status, res := call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{}); status != 409 || res.Description != DescConflict {
		t.Errorf("conflict mode: %d %+v", status, res)
	}
}

// TestWaitConfirmed: WaitConfirmed returns once a getUpdates offset is past every injected
// update, not when the updates were only fetched.
func TestWaitConfirmed(t *testing.T) {
	s := New("123:abc")
	defer s.Close()
	m := s.InjectMessage(DirectText(42, "one"))
	_, res := call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{"offset": "0", "timeout": "0"})
	var updates []Update
	b, _ := json.Marshal(res.Result)
	_ = json.Unmarshal(b, &updates)
	if len(updates) != 1 || updates[0].Message.MessageID != m.MessageID {
		t.Fatalf("updates %s", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitConfirmed(ctx); err == nil {
		t.Fatal("confirmed after a fetch without a later offset")
	}
	call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{"offset": strconv.Itoa(updates[0].UpdateID + 1), "timeout": "0"})
	if err := s.WaitConfirmed(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConfirmedEndpoint: GET /_fake/confirmed waits while an injected update is not
// confirmed and answers 204 once it is.
func TestConfirmedEndpoint(t *testing.T) {
	s := New("123:abc")
	defer s.Close()
	s.InjectMessage(DirectText(42, "one"))
	get := func(timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/_fake/confirmed", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(50 * time.Millisecond); err == nil {
		t.Fatalf("answered %d before the update was confirmed", code)
	}
	_, res := call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{"offset": "0", "timeout": "0"})
	var updates []Update
	b, _ := json.Marshal(res.Result)
	_ = json.Unmarshal(b, &updates)
	if len(updates) != 1 {
		t.Fatalf("updates %s", b)
	}
	call(t, s.URL+"/bot123:abc/getUpdates", map[string]string{"offset": strconv.Itoa(updates[0].UpdateID + 1), "timeout": "0"})
	if code, err := get(10 * time.Second); err != nil || code != http.StatusNoContent {
		t.Fatalf("after the confirmation: %d %v", code, err)
	}
}
