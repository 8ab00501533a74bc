package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoutesLatencyAwareShowEstimates(t *testing.T) {
	base, admin, stop := startAdmin(t)
	for _, route := range []string{"/peak-ewma/", "/adaptive/"} {
		for range 30 {
			code, _ := get(t, base+route+"hello")
			require.Equal(t, http.StatusOK, code)
		}
	}
	code, body := get(t, admin+"/status")
	require.Equal(t, http.StatusOK, code)
	var status lb.PoolStatus
	require.NoError(t, json.Unmarshal([]byte(body), &status))
	require.Len(t, status.Estimates, 2)
	for i, route := range []string{"/peak-ewma/", "/adaptive/"} {
		e := status.Estimates[i]
		assert.Equal(t, route, e.Balancer)
		require.Len(t, e.Servers, 3)
		byName := map[string]lb.Estimate{}
		for _, s := range e.Servers {
			byName[s.Server] = s
		}
		// gamma answers 50 ms late: whenever it was observed, its
		// estimate is above alpha's.
		if byName["gamma"].Observed && byName["alpha"].Observed {
			assert.Greater(t, byName["gamma"].Latency, byName["alpha"].Latency, route)
		}
	}

	req, err := http.NewRequest("GET", admin+"/status", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, stop())
}
