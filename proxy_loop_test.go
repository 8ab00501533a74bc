package lb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pool whose only server is the proxy itself: the request comes back once,
// carrying the proxy's Via token, and is answered 508 there, not forwarded
// again.
func TestProxyLoopDetected(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var self http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 50 {
			http.Error(w, "storm", http.StatusTeapot) // ends a loop the proxy does not
			return
		}
		self.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s, err := NewServer(ts.URL, WithName("self"))
	require.NoError(t, err)
	p := newTestProxy(t, []*Server{s})
	self = p

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(ts.URL + "/x")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusLoopDetected, resp.StatusCode)
	assert.EqualValues(t, 2, calls.Load(), "one hop through the proxy, then refused")
	assertNoneInFlight(t, s)
	assert.False(t, s.Ejected())
}

// The outbound request carries Via, appended to the client's, with the
// protocol version the proxy received and its pseudonym.
func TestProxySendsVia(t *testing.T) {
	t.Parallel()
	got := make(chan []string, 4)
	s := backend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Values("Via") })

	p := newTestProxy(t, []*Server{s})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Via", "1.0 fred, 1.1 p.example.net")
	p.ServeHTTP(httptest.NewRecorder(), r)
	via := <-got
	require.Len(t, via, 2)
	assert.Equal(t, "1.0 fred, 1.1 p.example.net", via[0])
	assert.Regexp(t, regexp.MustCompile(`^1\.1 lb-[0-9a-f]{16}$`), via[1])

	// Two proxies have different random pseudonyms.
	p2 := newTestProxy(t, []*Server{s})
	p2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	via2 := <-got
	require.Len(t, via2, 1)
	assert.NotEqual(t, via[1], via2[0])

	// A pseudonym set by WithVia, and HTTP/1.0 as received.
	p3 := newTestProxy(t, []*Server{s}, WithVia("edge-1"))
	r = httptest.NewRequest("GET", "/", nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	p3.ServeHTTP(httptest.NewRecorder(), r)
	assert.Equal(t, []string{"1.0 edge-1"}, <-got)

	// Another proxy's Via, even one whose pseudonym contains ours, passes;
	// our own, anywhere in the list, is a loop, answered without a pick.
	for _, v := range []string{"1.1 edge-10", "1.1 xedge-1", "1.1 edge-1x (comment)"} {
		r = httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Via", v)
		w := httptest.NewRecorder()
		p3.ServeHTTP(w, r)
		assert.Equal(t, http.StatusOK, w.Code, v)
		<-got
	}
	before := s.Stats().Requests
	for _, v := range []string{"1.1 edge-1", "1.0 a, 2 edge-1 (lb)", "HTTP/1.1   edge-1,1.1 b"} {
		r = httptest.NewRequest("GET", "/", nil)
		r.Header.Add("Via", "1.1 other")
		r.Header.Add("Via", v)
		w := httptest.NewRecorder()
		p3.ServeHTTP(w, r)
		assert.Equal(t, http.StatusLoopDetected, w.Code, v)
	}
	assert.Equal(t, before, s.Stats().Requests, "a loop is refused before any pick")
}

func TestWithViaRejects(t *testing.T) {
	t.Parallel()
	b := BalancerFunc(func(*http.Request) (PickResult, error) { return PickResult{}, ErrNoServer })
	for _, v := range []string{"", "a b", "a,b", "é", "a(b"} {
		_, err := NewProxy(b, WithVia(v))
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "lb: NewProxy: WithVia: pseudonym ")
	}
}
