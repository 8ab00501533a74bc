package lb

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeSnippetsAreTested checks that every line of every Go code block
// in README.md stands in a tested file (an Example, or the package doc),
// so the README cannot drift from code that compiles and runs.
func TestReadmeSnippetsAreTested(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	var tested []string
	for _, name := range []string{"example_test.go", "doc.go"} {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			line = strings.TrimSpace(strings.TrimPrefix(line, "//"))
			tested = append(tested, line)
		}
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks)
	for _, block := range blocks {
		for _, line := range strings.Split(block[1], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			assert.Contains(t, tested, line, "README line not found in a tested file")
		}
	}
}
