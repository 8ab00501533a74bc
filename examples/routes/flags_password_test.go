package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A password with "=" in it, given without the =weight its URL then needs,
// is an error that quotes no part of the password.
func TestRoutesFlagErrorsHidePasswordAfterEquals(t *testing.T) {
	// The "=" after the user info starts a weight, which is not a number;
	// the error must not quote the password, which has an "=" of its own.
	args := []string{"-backend", "http://opsuser:pw=s3cr3t@127.0.0.1:9=x"}
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were the flag accepted, run would return at once, not serve
	err := run(ctx, args, &out)
	require.ErrorIs(t, err, errUsage)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.NotContains(t, out.String(), "s3cr3t")
}
