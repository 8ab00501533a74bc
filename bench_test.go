package lb

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures Pick+Done for every algorithm over pools of 3 to
// 4,096 servers with weights 1 to 4, on one goroutine (serial) and on all of
// them (parallel).
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
			name := fmt.Sprintf("%s/servers=%d", alg.name, n)
			b.Run(name+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					res, err := bal.Pick(nil)
					if err != nil {
						b.Fatal(err)
					}
					res.Done(DoneInfo{})
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						res, err := bal.Pick(nil)
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
