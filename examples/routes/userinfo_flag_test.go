package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackendFlagEqualsInPassword: "=" may appear in a URL's user info
// (RFC 3986 allows it there unescaped); it is no weight separator, and an
// error never quotes the part of the password after it.
func TestBackendFlagEqualsInPassword(t *testing.T) {
	const secret = "hunter=2secret"
	servers, err := backendFlag{"http://opsuser:" + secret + "@127.0.0.1:9"}.servers()
	require.NoError(t, err)
	require.Len(t, servers, 1)
	assert.Equal(t, "http://127.0.0.1:9", servers[0].Name())
	assert.Equal(t, 1, servers[0].Weight())

	servers, err = backendFlag{"http://opsuser:" + secret + "@127.0.0.1:9=3"}.servers()
	require.NoError(t, err)
	assert.Equal(t, 3, servers[0].Weight())

	_, err = backendFlag{"http://opsuser:" + secret + "@127.0.0.1:9=heavy"}.servers()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "2secret")
	assert.Contains(t, err.Error(), `weight "heavy" is not a number`)
}
