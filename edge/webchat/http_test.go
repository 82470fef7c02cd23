package webchat

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHTTPGuardsAndAssets(t *testing.T) {
	srv, err := New(Config{Schemas: testSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, target, remote, host string
		hdr                                map[string]string
		want                               int
		wantType, wantBody                 string
	}{
		{name: "page", target: "/", want: 200, wantType: "text/html", wantBody: `<script type="module" src="app.js">`},
		{name: "module", target: "/app.js", want: 200, wantType: "text/javascript", wantBody: "import { Gateway }"},
		{name: "css", target: "/style.css", want: 200, wantType: "text/css"},
		{name: "ipv6 loopback", target: "/", remote: "[::1]:5555", want: 200},
		{name: "lan client", target: "/", remote: "192.168.1.20:5555", want: 403},
		{name: "lan client ws", target: "/ws", remote: "10.0.0.2:5555", want: 403},
		{name: "public v6 client", target: "/app.js", remote: "[2001:db8::1]:5555", want: 403},
		{name: "foreign host name", target: "/", host: "evil.example:18788", want: 403},
		{name: "unknown", target: "/nope.js", want: 404},
		{name: "no extension", target: "/static", want: 404},
		{name: "dot dot", target: "/../webchat.go", want: 404},
		{name: "dot dot in dir", target: "/static/../http.go", want: 404},
		{name: "encoded dot dot", target: "/%2e%2e/go.mod", want: 404},
		{name: "encoded slash", target: "/..%2fwebchat.go", want: 404},
		{name: "backslash", target: `/..\webchat.go`, want: 404},
		{name: "embedded dir prefix", target: "/static/app.js", want: 404},
		{name: "dot segment", target: "/./app.js", want: 404},
		{name: "post", method: "POST", target: "/", want: 405},
		{name: "ws foreign origin", target: "/ws", hdr: map[string]string{"Origin": "http://evil.example"}, want: 403},
		{name: "ws other loopback port", target: "/ws", hdr: map[string]string{"Origin": "http://127.0.0.1:9999"}, want: 403},
		{name: "ws null origin", target: "/ws", hdr: map[string]string{"Origin": "null"}, want: 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "http://127.0.0.1:18788/", nil)
			req.URL.Path = tt.target
			if p, err := http.NewRequest(method, "http://127.0.0.1:18788"+tt.target, nil); err == nil {
				req.URL = p.URL // keeps the decoded path of escaped targets
			}
			req.RemoteAddr = "127.0.0.1:5555"
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			req.Host = "127.0.0.1:18788"
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s %s: status %d, want %d", method, tt.target, rec.Code, tt.want)
			}
			if ct := rec.Header().Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.wantType)
			}
			if tt.wantBody != "" && !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			if tt.want == 200 && rec.Header().Get("Content-Security-Policy") == "" {
				t.Error("no Content-Security-Policy")
			}
		})
	}
}
