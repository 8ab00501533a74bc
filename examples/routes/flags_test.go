package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain runs the command's main instead of the tests when the test
// binary is started by runMain.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("ROUTES_TEST_MAIN_ARGS"); ok {
		os.Args = append([]string{"routes"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs the command's main with args in a child process and
// returns its exit code and its output (stdout and stderr together).
func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ROUTES_TEST_MAIN_ARGS="+strings.Join(args, " "))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String()
	}
	require.NoError(t, err)
	return 0, out.String()
}

func TestRoutesBadFlagsExit2WithUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"repeated backend", []string{"-backend", "http://127.0.0.1:9", "-backend", "http://127.0.0.1:9"},
			"http://127.0.0.1:9 given twice"},
		{"repeated backend, weights apart", []string{"-backend", "http://127.0.0.1:9=2", "-backend", "http://127.0.0.1:9=3"},
			"given twice"},
		{"bad weight", []string{"-backend", "http://127.0.0.1:9=heavy"}, `weight "heavy" is not a number`},
		{"bad URL", []string{"-backend", "localhost:8080"}, "missing scheme or host"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"extra argument", []string{"extra"}, `unexpected arguments ["extra"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runMain(t, append([]string{"-addr", "127.0.0.1:0"}, tt.args...)...)
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, tt.msg)
			assert.Contains(t, out, "Usage of routes:")
			assert.Contains(t, out, "-backend value")
		})
	}
}

func TestRoutesFlagErrorsHideUserInfo(t *testing.T) {
	for _, args := range [][]string{
		{"-backend", "http://opsuser:hunter2@127.0.0.1:80x"},
		{"-backend", "http://opsuser:hunter2@127.0.0.1:9=x"},
		{"-backend", "http://opsuser:hunter2@127.0.0.1:9", "-backend", "http://opsuser:hunter2@127.0.0.1:9"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out)
		require.ErrorIs(t, err, errUsage, args)
		for _, secret := range []string{"opsuser", "hunter2"} {
			assert.NotContains(t, err.Error(), secret, args)
			assert.NotContains(t, out.String(), secret, args)
		}
	}
}
