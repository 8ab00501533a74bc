package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/balancekit/lb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start runs the command on a random loopback port and returns its base
// URL and a func that stops it and returns what run returned.
func start(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	base, _, stop := startAdmin(t, args...)
	return base, stop
}

// startAdmin is start that also returns the base URL of the operator
// listener, also on a random loopback port.
func startAdmin(t *testing.T, args ...string) (base, admin string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, args...), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rd := bufio.NewReader(pr)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	base = line[strings.Index(line, "http://") : len(line)-1]
	line, err = rd.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "operator listener on http://"), line)
	admin = strings.TrimSuffix(strings.Fields(line)[3], ":")
	go func() { _, _ = io.Copy(io.Discard, rd) }() // the rest of the output
	return base, admin, func() error {
		cancel()
		return <-done
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestRoutes(t *testing.T) {
	base, admin, stop := startAdmin(t)
	for _, route := range routeNames {
		code, body := get(t, base+"/"+route+"/hello")
		assert.Equal(t, http.StatusOK, code, route)
		assert.Regexp(t, `^backend (alpha|beta|gamma): GET /hello\n$`, body, route)
	}

	// Round robin: three requests, three different backends.
	seen := map[string]bool{}
	for range 3 {
		_, body := get(t, base+"/round-robin/")
		seen[strings.Fields(body)[1]] = true
	}
	assert.Len(t, seen, 3)

	// /hash/: one user, one backend.
	owners := map[string]bool{}
	for range 5 {
		req, err := http.NewRequest("GET", base+"/hash/", nil)
		require.NoError(t, err)
		req.Header.Set("X-User", "alice")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		owners[string(b)] = true
	}
	assert.Len(t, owners, 1)

	// /sticky/: a cookie pins the client.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	pinned := map[string]bool{}
	for range 5 {
		resp, err := client.Get(base + "/sticky/")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pinned[string(b)] = true
	}
	assert.Len(t, pinned, 1)

	code, body := get(t, admin+"/status")
	assert.Equal(t, http.StatusOK, code)
	var status lb.PoolStatus
	require.NoError(t, json.Unmarshal([]byte(body), &status))
	assert.Equal(t, 3, status.Available)
	total := uint64(0)
	for _, s := range status.Servers {
		total += s.Requests
		assert.Zero(t, s.InFlight, s.Name)
	}
	assert.EqualValues(t, len(routeNames)+3+5+5, total)

	code, body = get(t, base+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "/least-connections/")
	code, _ = get(t, base+"/nope")
	assert.Equal(t, http.StatusNotFound, code)

	// The operator's handlers are on the operator listener only.
	for _, path := range []string{"/status", "/metrics"} {
		code, _ = get(t, base+path)
		assert.Equal(t, http.StatusNotFound, code, "public "+path)
	}
	assert.NotContains(t, body, "/status")
	code, body = get(t, admin+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	for _, name := range []string{"alpha", "beta", "gamma"} {
		assert.Contains(t, body, "\nlb_in_flight_requests{server=\""+name+"\"} 0\n")
		assert.Contains(t, body, "\nlb_server_state{server=\""+name+"\",state=\"up\"} 1\n")
	}
	assert.Regexp(t, `\nlb_requests_total\{server="alpha"\} [1-9]`, body)
	code, body = get(t, admin+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "/metrics")

	require.NoError(t, stop(), "a clean shutdown")
}

func TestRoutesRealBackends(t *testing.T) {
	// The demo backends of one instance serve as the real backends of
	// another.
	demo, stop := start(t)
	defer func() { assert.NoError(t, stop()) }()
	base, stop2 := start(t, "-backend", demo+"/round-robin=2", "-backend", demo+"/p2c")
	code, body := get(t, base+"/weighted/x")
	assert.Equal(t, http.StatusOK, code)
	assert.Regexp(t, `^backend \w+: GET /x\n$`, body)
	assert.NoError(t, stop2())
}

func TestRoutesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-backend", "localhost:8080"},
		{"-backend", "http://a:1=heavy"},
		{"-backend", "http://a:1=-1"},
		{"-nope"},
		{"extra"},
	} {
		err := run(context.Background(), args, io.Discard)
		assert.True(t, errors.Is(err, errUsage), "%v: %v", args, err)
	}
	err := run(context.Background(), []string{"-addr", "256.0.0.1:99999"}, io.Discard)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, errUsage))
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-admin-addr", "256.0.0.1:99999"}, io.Discard)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, errUsage))
	err = run(context.Background(), []string{"-admin-addr", ""}, io.Discard)
	assert.True(t, errors.Is(err, errUsage), "%v", err)
}
