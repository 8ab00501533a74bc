package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoutesStatusHidesBackendCredentials(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pw, ok := r.BasicAuth(); !ok || user != "opsuser" || pw != "hunter2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "backend with a password\n")
	}))
	defer backend.Close()
	withCreds := strings.Replace(backend.URL, "://", "://opsuser:hunter2@", 1)
	base, admin, stop := startAdmin(t, "-backend", withCreds)
	defer func() { assert.NoError(t, stop()) }()

	// The proxy sends the URL's credentials, as the health checks do.
	code, body := get(t, base+"/round-robin/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "backend with a password\n", body)

	for _, accept := range []string{"application/json", "text/html"} {
		req, err := http.NewRequest("GET", admin+"/status", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(b), strings.TrimPrefix(backend.URL, "http://"), accept)
		assert.NotContains(t, string(b), "hunter2", accept)
		assert.NotContains(t, string(b), "opsuser", accept)
	}
	code, body = get(t, admin+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `{server="`+backend.URL+`"}`)
	assert.NotContains(t, body, "hunter2")
	assert.NotContains(t, body, "opsuser")
}
