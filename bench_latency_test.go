package lb

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPickDoneLatency measures Pick+Done when Done reports a duration,
// as a Proxy's does: the path that records the latency. The durations cycle
// through 64 values from 100 µs to about 2 s.
//
//	go test -run '^$' -bench BenchmarkPickDoneLatency -benchmem .
func BenchmarkPickDoneLatency(b *testing.B) {
	var durations [64]time.Duration
	for i := range durations {
		durations[i] = time.Duration(float64(100*time.Microsecond) * float64(uint64(1)<<(i/4)) * (1 + float64(i%4)/4))
	}
	for _, alg := range algorithms[:5] { // the ones that do not learn from latency
		p, _ := newTestPool(b, ones(16)...)
		bal, err := alg.new(p)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("%s/servers=16", alg.name)
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res, err := bal.Pick(nil)
				if err != nil {
					b.Fatal(err)
				}
				res.Done(DoneInfo{StatusCode: 200, Duration: durations[i&63]})
				i++
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					res, err := bal.Pick(nil)
					if err != nil {
						b.Error(err)
						return
					}
					res.Done(DoneInfo{StatusCode: 200, Duration: durations[i&63]})
					i++
				}
			})
		})
	}
}
