package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCanarySplit(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-n", "100"}, &out))
	assert.Equal(t, " 90 × orders v1\n 10 × orders v2 (canary)\n", out.String())
}

func TestMuxRoutes(t *testing.T) {
	mux, pool, err := newMux()
	require.NoError(t, err)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	for _, path := range []string{"/healthz", "/api/orders", "/debug/canary"} {
		resp, err := http.Get(ts.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.NotEmpty(t, strings.TrimSpace(string(body)), path)
	}
	for _, s := range pool.Servers() {
		assert.Zero(t, s.InFlight())
	}
}

func TestServeAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-n", "0", "-addr", "127.0.0.1:0"}, pw)
		pw.Close()
		done <- err
	}()
	buf := make([]byte, 256)
	k, err := pr.Read(buf)
	require.NoError(t, err)
	line := string(buf[:k])
	url := line[strings.Index(line, "http://"):strings.Index(line, " (status")]
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	assert.NoError(t, <-done)
	assert.Error(t, run(context.Background(), []string{"-n", "-1"}, io.Discard))
}
