package lb

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

// BenchmarkPick measures Pick+Done for every algorithm over pools of 3 to
// 4,096 servers with weights 1 to 4, on one goroutine (serial) and on all of
// them (parallel). ConsistentHash picks by key (PickKey), cycling through
// 4,096 keys; its ring is built before the timing starts.
//
//	go test -run '^$' -bench BenchmarkPick -benchtime 200000x .
func BenchmarkPick(b *testing.B) {
	for _, alg := range algorithms {
		for _, n := range []int{3, 16, 256, 4096} {
			weights := make([]int, n)
			for i := range weights {
				weights[i] = 1 + i%4
			}
			p, _ := newTestPool(b, weights...)
			bal, err := alg.new(p)
			if err != nil {
				b.Fatal(err)
			}
			if res, err := bal.Pick(nil); err == nil { // builds any table
				res.Done(DoneInfo{})
			}
			// picker returns the pick function of one goroutine: keyed
			// picks rotate through keys with a counter of their own.
			picker := func() func() (PickResult, error) {
				if k, ok := bal.(*keyedPicks); ok {
					i := 0
					return func() (PickResult, error) {
						i++
						return k.h.PickKey(pickKeys[i%len(pickKeys)])
					}
				}
				return func() (PickResult, error) { return bal.Pick(nil) }
			}
			name := fmt.Sprintf("%s/servers=%d", alg.name, n)
			b.Run(name+"/serial", func(b *testing.B) {
				pick := picker()
				b.ReportAllocs()
				for b.Loop() {
					res, err := pick()
					if err != nil {
						b.Fatal(err)
					}
					res.Done(DoneInfo{})
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					pick := picker()
					for pb.Next() {
						res, err := pick()
						if err != nil {
							b.Error(err)
							return
						}
						res.Done(DoneInfo{})
					}
				})
			})
		}
	}
}

// BenchmarkConsistentHashRequest measures a ConsistentHash pick from a
// request, key extraction included.
func BenchmarkConsistentHashRequest(b *testing.B) {
	p, _ := newTestPool(b, ones(256)...)
	r := httptest.NewRequest("GET", "/users/42", nil)
	r.RemoteAddr = "192.0.2.10:5555"
	r.Header.Set("X-User", "user-42")
	r.Header.Set("Cookie", "theme=dark; session=abc123")
	for _, kf := range []struct {
		name string
		f    KeyFunc
	}{
		{"header", KeyHeader("X-User")},
		{"cookie", KeyCookie("session")},
		{"client-ip", KeyClientIP()},
		{"path", KeyPath()},
	} {
		h, err := NewConsistentHash(p, kf.f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kf.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := h.Pick(r)
				if err != nil {
					b.Fatal(err)
				}
				res.Done(DoneInfo{})
			}
		})
	}
}
