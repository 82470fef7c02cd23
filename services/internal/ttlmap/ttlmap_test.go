package ttlmap

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// op is one step of a table test: put (k at t0+at), get (k at t0+at, want 1: present), del
// (want 1: was present) or expire (at t0+at, want: removed count). When keys is not nil it
// is the oldest-first content after the step.
type op struct {
	do   string
	k    string
	at   time.Duration
	want int // get: 1 present, 0 absent; expire: removed count; del: 1 present
	keys []string
}

func keys(m *Map[string, int]) []string {
	var out []string
	for k := range m.All() {
		out = append(out, k)
	}
	return out
}

func TestOperations(t *testing.T) {
	const ttl = time.Minute
	for _, tt := range []struct {
		name string
		ttl  time.Duration
		max  int
		ops  []op
	}{
		{"insertion order", ttl, 0, []op{
			{do: "put", k: "a", keys: []string{"a"}},
			{do: "put", k: "b", at: time.Second, keys: []string{"a", "b"}},
			{do: "put", k: "c", at: time.Second, keys: []string{"a", "b", "c"}},
		}},
		{"a put moves the key to the end", ttl, 0, []op{
			{do: "put", k: "a"},
			{do: "put", k: "b", at: 1},
			{do: "put", k: "a", at: 2, keys: []string{"b", "a"}},
		}},
		{"an older stamp goes to its place", ttl, 0, []op{
			{do: "put", k: "a", at: 10},
			{do: "put", k: "b", at: 30},
			{do: "put", k: "c", at: 20, keys: []string{"a", "c", "b"}},
			{do: "put", k: "d", at: 0, keys: []string{"d", "a", "c", "b"}},
			{do: "put", k: "e", at: 20, keys: []string{"d", "a", "c", "e", "b"}},
		}},
		{"expiry is strictly after the TTL", ttl, 0, []op{
			{do: "put", k: "a"},
			{do: "get", k: "a", at: ttl, want: 1},
			{do: "get", k: "a", at: ttl + 1, want: 0, keys: []string{}},
		}},
		{"expire removes the oldest only", ttl, 0, []op{
			{do: "put", k: "a"},
			{do: "put", k: "b", at: 30 * time.Second},
			{do: "put", k: "c", at: 50 * time.Second},
			{do: "expire", at: ttl + 40*time.Second, want: 2, keys: []string{"c"}},
			{do: "expire", at: ttl + 40*time.Second, want: 0, keys: []string{"c"}},
		}},
		{"put expires what its stamp outlived", ttl, 0, []op{
			{do: "put", k: "a"},
			{do: "put", k: "b", at: 2 * time.Second},
			{do: "put", k: "c", at: ttl + time.Second, keys: []string{"b", "c"}},
		}},
		{"bound evicts the oldest", 0, 2, []op{
			{do: "put", k: "a"},
			{do: "put", k: "b", at: 1},
			{do: "put", k: "a", at: 2, keys: []string{"b", "a"}},
			{do: "put", k: "c", at: 3, keys: []string{"a", "c"}},
			{do: "get", k: "b", want: 0},
		}},
		{"no TTL never expires", 0, 0, []op{
			{do: "put", k: "a"},
			{do: "get", k: "a", at: 1000 * time.Hour, want: 1},
			{do: "expire", at: 1000 * time.Hour, want: 0, keys: []string{"a"}},
		}},
		{"delete", ttl, 0, []op{
			{do: "put", k: "a"},
			{do: "put", k: "b", at: 1},
			{do: "del", k: "a", want: 1, keys: []string{"b"}},
			{do: "del", k: "a", want: 0, keys: []string{"b"}},
			{do: "get", k: "a", want: 0},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := New[string, int](tt.ttl, tt.max)
			for i, o := range tt.ops {
				now := t0.Add(o.at)
				switch o.do {
				case "put":
					m.Put(o.k, i, now)
				case "get":
					v, ok := m.Get(o.k, now)
					if ok != (o.want == 1) {
						t.Fatalf("step %d: Get(%s) present=%v, want %v", i, o.k, ok, o.want == 1)
					}
					if ok && v >= i {
						t.Fatalf("step %d: Get(%s) = %d, a value from the future", i, o.k, v)
					}
				case "del":
					if got := m.Delete(o.k); got != (o.want == 1) {
						t.Fatalf("step %d: Delete(%s) = %v", i, o.k, got)
					}
				case "expire":
					if got := m.Expire(now); got != o.want {
						t.Fatalf("step %d: Expire = %d, want %d", i, got, o.want)
					}
				}
				if o.keys != nil {
					if got := keys(m); !slices.Equal(got, o.keys) {
						t.Fatalf("step %d (%s %s): keys %v, want %v", i, o.do, o.k, got, o.keys)
					}
					if m.Len() != len(o.keys) {
						t.Fatalf("step %d: Len %d, want %d", i, m.Len(), len(o.keys))
					}
				}
			}
		})
	}
}

func TestGetReturnsTheLatestValue(t *testing.T) {
	m := New[string, string](time.Minute, 0)
	m.Put("k", "one", t0)
	m.Put("k", "two", t0.Add(time.Second))
	if v, ok := m.Get("k", t0.Add(time.Minute+time.Second)); !ok || v != "two" {
		t.Fatalf("Get = %q %v, want two (restamped)", v, ok)
	}
	if at, ok := m.Stamp("k"); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("Stamp = %s %v", at, ok)
	}
	if _, ok := m.Stamp("missing"); ok {
		t.Fatal("Stamp of a missing key")
	}
}

func TestBackwardAndEarlyStop(t *testing.T) {
	m := New[int, int](0, 0)
	for i := range 5 {
		m.Put(i, i*10, t0.Add(time.Duration(i)))
	}
	var back []int
	for k, v := range m.Backward() {
		if v != k*10 {
			t.Fatalf("value of %d = %d", k, v)
		}
		back = append(back, k)
	}
	if !slices.Equal(back, []int{4, 3, 2, 1, 0}) {
		t.Fatalf("Backward = %v", back)
	}
	for range m.All() {
		break
	}
	for range m.Backward() {
		break
	}
	if m.Len() != 5 {
		t.Fatalf("Len = %d after stopped iterations", m.Len())
	}
}

func TestNextExpiry(t *testing.T) {
	m := New[string, int](time.Minute, 0)
	if _, ok := m.NextExpiry(); ok {
		t.Fatal("empty map has an expiry")
	}
	m.Put("b", 0, t0.Add(time.Second))
	m.Put("a", 0, t0)
	at, ok := m.NextExpiry()
	if !ok || !at.Equal(t0.Add(time.Minute+1)) {
		t.Fatalf("NextExpiry = %s %v, want the oldest's stamp + TTL + 1ns", at, ok)
	}
	if n := m.Expire(at.Add(-1)); n != 0 {
		t.Fatalf("expired %d before NextExpiry", n)
	}
	if n := m.Expire(at); n != 1 {
		t.Fatalf("expired %d at NextExpiry, want 1", n)
	}
	if _, ok := New[string, int](0, 3).NextExpiry(); ok {
		t.Fatal("a map without TTL has an expiry")
	}
}

// TestTimerDrivenExpiry is how an owner removes entries without polling: one timer armed
// for NextExpiry. Under synctest the fake clock shows each entry leaves exactly when due.
func TestTimerDrivenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 10 * time.Second
		m := New[string, int](ttl, 0)
		start := time.Now()
		m.Put("a", 1, start)
		time.Sleep(3 * time.Second)
		m.Put("b", 2, time.Now())
		var gone []string
		for m.Len() > 0 {
			next, ok := m.NextExpiry()
			if !ok {
				t.Fatal("entries but no expiry")
			}
			time.Sleep(time.Until(next))
			before := keys(m)
			if m.Expire(time.Now()) != 1 {
				t.Fatalf("at %s: nothing expired", time.Since(start))
			}
			gone = append(gone, fmt.Sprintf("%s@%s", before[0], time.Since(start).Round(time.Millisecond)))
		}
		if want := []string{"a@10s", "b@13s"}; !slices.Equal(gone, want) {
			t.Fatalf("expired %v, want %v", gone, want)
		}
	})
}

func TestBoundHoldsUnderChurn(t *testing.T) {
	m := New[string, int](time.Hour, 100)
	for i := range 10_000 {
		m.Put(strconv.Itoa(i), i, t0.Add(time.Duration(i)*time.Millisecond))
		if m.Len() > 100 {
			t.Fatalf("Len %d over the bound after %d puts", m.Len(), i+1)
		}
	}
	got := keys(m)
	if len(got) != 100 || got[0] != "9900" || got[99] != "9999" {
		t.Fatalf("kept %d keys from %s to %s, want the newest 100", len(got), got[0], got[len(got)-1])
	}
}

// BenchmarkPutFull measures a Put into a full map: constant per operation, whatever the
// bound (compare -bench with the sizes).
func BenchmarkPutFull(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			m := New[int, int](time.Hour, size)
			at := t0
			for i := range size {
				m.Put(i, i, at)
			}
			b.ReportAllocs()
			i := size
			for b.Loop() {
				at = at.Add(time.Microsecond)
				m.Put(i, i, at)
				i++
			}
		})
	}
}
