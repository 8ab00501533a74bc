package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFleet(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-instances", "3", "-backends", "4", "-keys", "100"}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	assert.Contains(t, s, "start: all 3 instances converged")
	assert.Contains(t, s, "backend backend-2 removed from DNS: all 3 instances converged")
	assert.Contains(t, s, "a backend added, backend-1 reweighted to 3: all 3 instances converged")
	assert.Contains(t, s, "backend-1(weight 3)")
	assert.Contains(t, s, "backend-5(weight 1)")
	assert.Contains(t, s, "hash: all 3 instances agree on 100 of 100 keys")
	assert.Contains(t, s, "sticky: the cookie of each instance is honoured by all 3")
	assert.Regexp(t, `hash: (\d+) of 100 keys moved, (\d+) of them from backend-2`, s)
	assert.Contains(t, s, "done")
}

func TestFleetFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-instances", "1"},
		{"-backends", "100"},
		{"-keys", "0"},
		{"-timeout", "0s"},
	} {
		var out bytes.Buffer
		assert.Error(t, run(context.Background(), args, &out), "%v", args)
	}
}
