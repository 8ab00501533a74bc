package lb

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowBody is a client's request body that takes delay before each of its
// chunks, as a client uploading slowly does.
type slowBody struct {
	chunks []string
	delay  time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.chunks) == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.delay)
	n := copy(p, b.chunks[0])
	b.chunks[0] = b.chunks[0][n:]
	if b.chunks[0] == "" {
		b.chunks = b.chunks[1:]
	}
	return n, nil
}

// slowReader is a client's response writer whose writes take delay, as a
// client that reads its answer slowly makes them.
type slowReader struct {
	*httptest.ResponseRecorder
	delay time.Duration
}

func (w slowReader) Write(b []byte) (int, error) {
	time.Sleep(w.delay)
	return w.ResponseRecorder.Write(b)
}

// recordDone returns a balancer over b that records the DoneInfo of every
// pick.
func recordDone(b Balancer) (Balancer, func() []DoneInfo) {
	var (
		mu    sync.Mutex
		infos []DoneInfo
	)
	return BalancerFunc(func(r *http.Request) (PickResult, error) {
			res, err := b.Pick(r)
			if err != nil {
				return res, err
			}
			done := res.Done
			res.Done = func(info DoneInfo) {
				mu.Lock()
				infos = append(infos, info)
				mu.Unlock()
				done(info)
			}
			return res, nil
		}), func() []DoneInfo {
			mu.Lock()
			defer mu.Unlock()
			return append([]DoneInfo(nil), infos...)
		}
}

// The latency a proxied request teaches the balancer is the server's: the
// time the client takes to send its body or to read the answer is not
// counted, else one slow client makes a healthy server look slow to a
// latency-aware balancer, which then starves it.
func TestProxyDurationIsTheServersTime(t *testing.T) {
	const service = 50 * time.Millisecond
	const client = 10 * time.Second
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(service)
		w.WriteHeader(http.StatusOK)
		for range 3 {
			_, _ = io.WriteString(w, "part of a long answer\n")
		}
	})
	// A URL server's backend, as a transport: it reads the whole body,
	// takes its service time and answers.
	backend := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		time.Sleep(service)
		answer := strings.Repeat("part of a long answer\n", 3)
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: r,
			ContentLength: int64(len(answer)), Body: io.NopCloser(strings.NewReader(answer))}, nil
	})
	for _, kind := range []string{"handler", "url"} {
		for _, tc := range []struct {
			name   string
			body   func() io.Reader
			writer func() http.ResponseWriter
		}{
			{"fast client", func() io.Reader { return strings.NewReader("hello") }, func() http.ResponseWriter { return httptest.NewRecorder() }},
			{"slow upload", func() io.Reader { return &slowBody{chunks: []string{"he", "llo"}, delay: client} }, func() http.ResponseWriter { return httptest.NewRecorder() }},
			{"slow reader", func() io.Reader { return strings.NewReader("hello") }, func() http.ResponseWriter {
				return slowReader{ResponseRecorder: httptest.NewRecorder(), delay: client}
			}},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var s *Server
					var err error
					opts := []ProxyOption{quiet}
					if kind == "handler" {
						s, err = NewHandlerServer("h", handler)
					} else {
						s, err = NewServer("http://10.0.0.1:80", WithName("u"))
						opts = append(opts, WithTransport(backend))
					}
					require.NoError(t, err)
					pool, err := NewPool(s)
					require.NoError(t, err)
					ewma, err := NewPeakEWMA(pool)
					require.NoError(t, err)
					b, infos := recordDone(ewma)
					p, err := NewProxy(b, opts...)
					require.NoError(t, err)
					r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(tc.body()))
					r.ContentLength = -1
					p.ServeHTTP(tc.writer(), r)
					got := infos()
					require.Len(t, got, 1)
					assert.NoError(t, got[0].Err)
					assert.Equal(t, http.StatusOK, got[0].StatusCode)
					assert.Equal(t, service, got[0].Duration)
					assert.Equal(t, service, ewma.Estimates()[0].Latency)
				})
			})
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A handler that answers 5xx because its client went away (its context was
// cancelled) has not failed: the outcome is the client's doing, and a
// latency-aware balancer learns nothing from it.
func TestProxyClientGoneBeforeA5xxIsTheClientsFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewHandlerServer("h", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			http.Error(w, "downstream: "+r.Context().Err().Error(), http.StatusInternalServerError)
		}))
		require.NoError(t, err)
		pool, err := NewPool(s)
		require.NoError(t, err)
		a, err := NewAdaptive(pool)
		require.NoError(t, err)
		b, infos := recordDone(a)
		p, err := NewProxy(b, quiet)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		p.ServeHTTP(httptest.NewRecorder(), r)
		got := infos()
		require.Len(t, got, 1)
		assert.ErrorIs(t, got[0].Err, context.Canceled)
		assert.Zero(t, a.Estimates()[0].Failures)
		assert.False(t, a.Estimates()[0].Observed)
		assert.Zero(t, s.Stats().Failures)
	})
}
