package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the demo: nine real connections through the proxy, spread
// three per echo server by least connections.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-clients", "9"}, &out))
	assert.Contains(t, out.String(), "tcp: proxy on 127.0.0.1:")
	assert.Contains(t, out.String(), "tcp: 9 connections open: alpha=3 beta=3 gamma=3\n")
}

// TestServe drives connections against -serve and stops it by canceling.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	pr, pw := io.Pipe()
	go func() {
		done <- run(ctx, []string{"-serve"}, pw)
		pw.Close()
	}()
	first, err := bufio.NewReader(pr).ReadString('\n') // the proxy listens once it is printed
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, _, ok := strings.Cut(strings.TrimPrefix(first, "tcp: proxy on "), ",")
	require.True(t, ok, first)

	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = c.Write([]byte("ping\n"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, "ping\n", string(got))
	require.NoError(t, c.Close())
	cancel()
	require.NoError(t, <-done)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-clients", "0"}, {"-clients", "1001"}, {"extra"}, {"-nope"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out)
		require.ErrorIs(t, err, errUsage, args)
		assert.True(t, strings.Contains(err.Error(), "usage"), err.Error())
	}
}
