package lb

import "sync"

// copyBufferSize is the size of the buffers the proxy copies response
// bodies through: the size httputil.ReverseProxy allocates when it has no
// pool.
const copyBufferSize = 32 << 10

// bufferPool is the [httputil.BufferPool] of every Proxy: it hands out
// buffers of copyBufferSize bytes and takes back only buffers of that
// capacity, dropping any other. What it keeps is bounded by the garbage
// collector: a [sync.Pool] frees its idle buffers within two collections,
// so a burst leaves nothing behind once traffic falls. Get and Put
// allocate nothing once the pool is warm.
type bufferPool struct {
	pool sync.Pool // of *[copyBufferSize]byte
}

// copyBuffers is shared by every Proxy, so that their buffers are reused
// across proxies.
var copyBuffers = newBufferPool()

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

// Get returns a buffer of copyBufferSize bytes.
func (p *bufferPool) Get() []byte {
	return p.pool.Get().(*[copyBufferSize]byte)[:]
}

// Put gives b back for reuse if it is one of the pool's size; any other
// buffer is left to the garbage collector.
func (p *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}
