package lb

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusHandlerShowsEstimates(t *testing.T) {
	p, _ := newTestPool(t, 1, 1)
	newFakeClock(p)
	b, err := NewAdaptive(p, seeded(1))
	require.NoError(t, err)
	res, err := b.Pick(nil)
	require.NoError(t, err)
	res.Done(DoneInfo{StatusCode: 200, Duration: 12 * time.Millisecond})
	h := StatusHandler(p, StatusEstimator{Name: "adaptive", Estimator: b})

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var status PoolStatus
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &status))
	require.Len(t, status.Estimates, 1)
	assert.Equal(t, "adaptive", status.Estimates[0].Balancer)
	got := estimateOf(status.Estimates[0].Servers, res.Server.Name())
	assert.True(t, got.Observed)
	assert.Equal(t, 12*time.Millisecond, got.Latency)

	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Contains(t, w.Body.String(), "adaptive: latency estimates")
	assert.Contains(t, w.Body.String(), "12ms")

	w = httptest.NewRecorder()
	StatusHandler(p).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	assert.NotContains(t, w.Body.String(), "estimates", "none without estimators")
}
