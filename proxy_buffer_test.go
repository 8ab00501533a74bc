package lb

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingBufferPool returns a fresh pool and a counter of the buffers it
// has allocated.
func countingBufferPool() (*bufferPool, *atomic.Int64) {
	p, made := newBufferPool(), new(atomic.Int64)
	next := p.pool.New
	p.pool.New = func() any { made.Add(1); return next() }
	return p, made
}

func TestBufferPoolHandsOutFullBuffers(t *testing.T) {
	t.Parallel()
	p := newBufferPool()
	for range 3 {
		b := p.Get()
		require.Len(t, b, copyBufferSize)
		require.Equal(t, copyBufferSize, cap(b))
		p.Put(b)
	}
}

func TestBufferPoolDropsOtherSizes(t *testing.T) {
	t.Parallel()
	p := newBufferPool()
	big := make([]byte, 2*copyBufferSize)
	for _, b := range [][]byte{
		nil,
		make([]byte, 1024),
		make([]byte, 10, copyBufferSize-1),
		big,
		big[:copyBufferSize], // right length, but it would keep 64 KiB alive
	} {
		require.NotPanics(t, func() { p.Put(b) }, "Put of len %d cap %d", len(b), cap(b))
		got := p.Get()
		require.Equal(t, copyBufferSize, cap(got))
		if cap(b) > 0 {
			assert.NotSame(t, &b[:1][0], &got[0], "a buffer of cap %d was kept", cap(b))
		}
	}
}

// A burst takes as many buffers as responses copied at once; once the
// burst is over, the garbage collector frees them all: within two
// collections the pool keeps nothing.
func TestBufferPoolBurstIsFreed(t *testing.T) {
	p, made := countingBufferPool()
	const burst = 256 // 8 MiB
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = p.Get()
	}
	require.EqualValues(t, burst, made.Load())
	for _, b := range bufs {
		p.Put(b)
	}
	clear(bufs)
	runtime.GC()
	runtime.GC()
	for range burst {
		p.Put(p.Get())
	}
	// Each Get after the collections found the pool empty, or the buffer
	// the one before it put back: one new buffer at least, never a burst
	// kept from before.
	assert.Greater(t, made.Load(), int64(burst), "the pool kept buffers across two collections")
}

func TestProxyCopiesThroughBufferPool(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16) // 100 KiB: several buffers full
	s := backend(t, "a", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	p := newTestProxy(t, []*Server{s})
	require.Same(t, httputil.BufferPool(copyBuffers), p.rp.BufferPool)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	for range 3 {
		resp, err := http.Get(front.URL)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, body, got)
	}
	assertNoneInFlight(t, s)
}
