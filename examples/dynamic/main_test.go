package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func do(t *testing.T, method, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	require.NoError(t, err)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json") // the admin API's changes are JSON
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestDynamic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rd := bufio.NewReader(pr)
	var bases []string
	for range 2 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		bases = append(bases, strings.TrimSuffix(line[strings.Index(line, "http://"):], "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }()
	traffic, admin := bases[0], bases[1]
	adminRoot := strings.TrimSuffix(admin, "/admin/")

	seen := map[string]bool{}
	for range 20 {
		code, body := do(t, "GET", traffic, "")
		require.Equal(t, http.StatusOK, code)
		seen[strings.TrimSpace(body)] = true
	}
	assert.Equal(t, map[string]bool{"backend demo-1": true, "backend demo-2": true}, seen)

	code, body := do(t, "POST", adminRoot+"/demo", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "added demo-3")

	code, _ = do(t, "POST", admin+"drain?name=demo-1", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = do(t, "DELETE", admin+"?name="+url.QueryEscape("demo-2"), "")
	assert.Equal(t, http.StatusOK, code)
	for range 5 {
		_, body := do(t, "GET", traffic, "")
		assert.Equal(t, "backend demo-3\n", body)
	}

	code, body = do(t, "GET", admin, "")
	assert.Equal(t, http.StatusOK, code)
	var status lb.PoolStatus
	require.NoError(t, json.Unmarshal([]byte(body), &status))
	require.Len(t, status.Servers, 1)
	assert.Equal(t, "demo-3", status.Servers[0].Name)

	code, _ = do(t, "POST", admin, `{"url": "nonsense"}`)
	assert.Equal(t, http.StatusBadRequest, code)

	// Nothing left: 503.
	code, _ = do(t, "DELETE", admin+"?name=demo-3", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = do(t, "GET", traffic, "")
	assert.Equal(t, http.StatusServiceUnavailable, code)

	cancel()
	assert.NoError(t, <-done)
}
