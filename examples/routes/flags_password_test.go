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
	args := []string{"-backend", "http://opsuser:pw=s3cr3t@127.0.0.1:9"}
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	require.ErrorIs(t, err, errUsage)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.NotContains(t, out.String(), "s3cr3t")
}
