package lb

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WithErrorHandler writes the answer to a request whose body cannot be
// read, whether the body was to be kept for retries (a PUT, read before
// any server is picked) or streamed (a POST, read while it is sent on).
func TestProxyErrorHandlerAnswersBadBodies(t *testing.T) {
	t.Parallel()
	const badChunk = "5\r\nhello\r\nzz\r\n"
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var codes []int
			var errs []error
			s := backend(t, "a", nil)
			p := newTestProxy(t, []*Server{s}, WithErrorHandler(func(w http.ResponseWriter, r *http.Request, code int, err error) {
				mu.Lock()
				codes, errs = append(codes, code), append(errs, err)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = w.Write([]byte(`{"error":"bad body"}`))
			}))
			ts := httptest.NewServer(p)
			t.Cleanup(ts.Close)
			got := rawRequest(t, ts.URL, method+" / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+badChunk, false)
			assert.Equal(t, http.StatusBadRequest, got)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []int{http.StatusBadRequest}, codes, "the error handler did not answer")
			assert.True(t, errors.Is(errs[0], ErrClientBody), "%v", errs[0])
		})
	}
}
