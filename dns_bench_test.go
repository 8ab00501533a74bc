package lb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// appliedWatcher returns a watcher whose pool holds n servers from an
// answer of n records (SRV ones, over two priorities, if srv).
func appliedWatcher(t testing.TB, n int, srv bool) *dnsWatcher {
	t.Helper()
	opts := []DNSOption{WithDNSLogger(slog.New(slog.DiscardHandler))}
	if srv {
		opts = append(opts, WithDNSSRV())
	}
	w, err := newDNSWatcher(new(Pool), "bench.test", opts)
	require.NoError(t, err)
	w.ctx = context.Background()
	for i := range n {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 8080)
		if srv {
			w.add(a, uint16(i%2), 1+i%5)
		} else {
			w.add(a, 0, 0)
		}
	}
	w.last, w.next = w.next, nil
	w.apply()
	require.Equal(t, n, w.pool.Len())
	return w
}

// TestWatchDNSUnchangedNoAlloc checks that applying an answer that has
// not changed allocates nothing, whatever the number of servers.
func TestWatchDNSUnchangedNoAlloc(t *testing.T) {
	for _, srv := range []bool{false, true} {
		w := appliedWatcher(t, 1000, srv)
		v := w.pool.Version()
		allocs := testing.AllocsPerRun(20, w.apply)
		require.Zero(t, allocs, "srv %v", srv)
		require.Equal(t, v, w.pool.Version(), "nothing changed")
	}
}

// BenchmarkWatchDNSRefresh measures a refresh of 1,000 records that have
// not changed: the diff against the pool alone (apply), and with the
// lookup from a DNS server on 127.0.0.1 (lookup, over TCP: the answer does
// not fit in UDP).
func BenchmarkWatchDNSRefresh(b *testing.B) {
	for _, srv := range []bool{false, true} {
		b.Run(fmt.Sprintf("apply/srv=%v/1000", srv), func(b *testing.B) {
			w := appliedWatcher(b, 1000, srv)
			b.ReportAllocs()
			for b.Loop() {
				w.apply()
			}
		})
	}
	b.Run("lookup+apply/A/1000", func(b *testing.B) {
		d := newTestDNS(b)
		var addrs []string
		for i := range 1000 {
			addrs = append(addrs, fmt.Sprintf("10.2.%d.%d", i/250, i%250+1))
		}
		d.setA("big.test", addrs...)
		w, err := newDNSWatcher(new(Pool), "big.test.", []DNSOption{WithDNSResolver(d.resolver()), WithDNSLogger(slog.New(slog.DiscardHandler))})
		require.NoError(b, err)
		ctx := context.Background()
		w.ctx = ctx
		w.refresh(ctx)
		require.Equal(b, 1000, w.pool.Len())
		v := w.pool.Version()
		b.ReportAllocs()
		for b.Loop() {
			w.refresh(ctx)
		}
		require.Equal(b, v, w.pool.Version())
	})
	b.Run("lookup+apply/SRV/1000", func(b *testing.B) {
		d := newTestDNS(b)
		var records []string
		for i := range 1000 {
			target := fmt.Sprintf("t%d.test.", i)
			records = append(records, fmt.Sprintf("%d %d 8080 %s", i%2, 1+i%5, target))
			d.setA(target, fmt.Sprintf("10.3.%d.%d", i/250, i%250+1))
		}
		d.setSRV(b, "_http._tcp.big.test", records...)
		w, err := newDNSWatcher(new(Pool), "_http._tcp.big.test.", []DNSOption{WithDNSSRV(), WithDNSResolver(d.resolver()), WithDNSLogger(slog.New(slog.DiscardHandler))})
		require.NoError(b, err)
		ctx := context.Background()
		w.ctx = ctx
		w.refresh(ctx)
		require.Equal(b, 1000, w.pool.Len())
		v := w.pool.Version()
		b.ReportAllocs()
		for b.Loop() {
			w.refresh(ctx)
		}
		require.Equal(b, v, w.pool.Version())
	})
}
