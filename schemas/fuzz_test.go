package schemas

import (
	"testing"
)

// FuzzDecodeValidate feeds arbitrary bytes through Decode and every validator: nothing may
// panic, every error has text, and the same input always gets the same error.
func FuzzDecodeValidate(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, g := range goldens(f, dir) {
			f.Add(g.data)
		}
	}
	s := mustLoad(f)
	methods := []string{MethodHealth, MethodStatus, MethodSystemPresence, MethodSystemEvent, MethodSend, MethodAgent, MethodChatHistory, MethodChatSend}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Decode error without text")
			}
			return
		}
		checks := []func() error{
			func() error { return s.Hello(v) },
			func() error { return s.Request(v) },
			func() error { return s.ServerFrame(b) },
		}
		for _, m := range methods {
			checks = append(checks,
				func() error { return s.Params(m, v) },
				func() error { return s.Payload(m, v) })
		}
		if obj, ok := v.(map[string]any); ok {
			if p, ok := obj["params"]; ok {
				for _, m := range methods {
					checks = append(checks, func() error { return s.Params(m, p) })
				}
			}
			if p, ok := obj["payload"]; ok {
				for _, m := range methods {
					checks = append(checks, func() error { return s.Payload(m, p) })
				}
			}
		}
		for i, check := range checks {
			err := check()
			if err == nil {
				continue
			}
			if err.Error() == "" {
				t.Fatalf("check %d: error without text", i)
			}
			if again := check(); again == nil || again.Error() != err.Error() {
				t.Fatalf("check %d: unstable error %q then %v", i, err, again)
			}
		}
	})
}

func BenchmarkDecodeValidateRequest(b *testing.B) {
	s := mustLoad(b)
	frames := []struct {
		name string
		data []byte
	}{
		{"health", []byte(`{"type":"req","id":"1","method":"health"}`)},
		{"system-event", []byte(`{"type":"req","id":"2","method":"system-event","params":{"text":"Node: mac (192.168.1.20) · app 2.3.1 · last input 12s ago · mode app · reason periodic","instanceId":"mac-7f3a","lastInputSeconds":12,"tags":["laptop"]}}`)},
	}
	for _, fr := range frames {
		b.Run(fr.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(fr.data)))
			for b.Loop() {
				v, err := Decode(fr.data)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Request(v); err != nil {
					b.Fatal(err)
				}
				m := v.(map[string]any)
				if err := s.Params(m["method"].(string), m["params"]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
