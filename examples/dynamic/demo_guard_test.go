package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoRefusesCrossSite: POST /demo, on the admin listener beside the
// admin API, follows the API's rules: a web page the operator visits cannot
// start backends and add them to the pool with a simple cross-site POST
// (no CORS preflight: no Content-Type, or a form's, and an Origin header).
func TestDemoRefusesCrossSite(t *testing.T) {
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
	demo := strings.TrimSuffix(bases[1], "/admin/") + "/demo"

	post := func(contentType, origin string) int {
		req, err := http.NewRequest(http.MethodPost, demo, strings.NewReader("a=b"))
		require.NoError(t, err)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post("application/x-www-form-urlencoded", "https://evil.example"))
	assert.Equal(t, http.StatusForbidden, post("text/plain", "https://evil.example"))
	assert.Equal(t, http.StatusForbidden, post("application/json", "https://evil.example"))
	assert.Equal(t, http.StatusUnsupportedMediaType, post("text/plain", ""))
	assert.Equal(t, http.StatusUnsupportedMediaType, post("", ""))
	assert.Equal(t, http.StatusOK, post("application/json", ""), "an operator's curl")

	cancel()
	assert.NoError(t, <-done)
}
