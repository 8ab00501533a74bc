package lb

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDrawPairLargePools checks drawPair at the size where one draw over
// all pairs stops fitting in an int: every argument passed to the random
// source is positive and the pair is distinct and in range, with 64-bit
// ints as with 32-bit ones.
func TestDrawPairLargePools(t *testing.T) {
	t.Parallel()
	for _, n := range []int{pairDrawMax - 1, pairDrawMax, pairDrawMax + 1, math.MaxInt} {
		for _, pick := range []string{"low", "high"} {
			script := func(m int) int {
				require.Positive(t, m, "n=%d", n)
				if pick == "low" {
					return 0
				}
				return m - 1
			}
			i, j := drawPair(script, n)
			require.NotEqual(t, i, j, "n=%d", n)
			require.True(t, i >= 0 && i < n && j >= 0 && j < n, "n=%d: %d, %d", n, i, j)
		}
	}
}

// TestRandBelowAboveLimit checks the draw of weighted picks whose total
// weight is above the largest int the random source takes (on 32-bit
// platforms): the value stays below n and the source is asked only for
// values it can give.
func TestRandBelowAboveLimit(t *testing.T) {
	t.Parallel()
	const limit = 1<<15 - 1
	for _, n := range []uint64{1, limit, limit + 1, 3 * limit, 1 << 40, math.MaxUint64} {
		for _, pick := range []string{"low", "high", "mid"} {
			script := func(m int) int {
				require.True(t, m > 0 && m <= limit, "n=%d: randN(%d)", n, m)
				switch pick {
				case "low":
					return 0
				case "high":
					return m - 1
				}
				return m / 2
			}
			x := randBelow(script, n, limit)
			assert.Less(t, x, n, "n=%d %s", n, pick)
		}
	}
	// Within the limit it is one plain draw.
	assert.Equal(t, uint64(41), randBelow(func(m int) int { require.Equal(t, 100, m); return 41 }, 100, limit))
}

// TestFitLapHugeTotal checks that weights whose sum passes 2^31 are scaled
// into a lap of bounded length, with 32-bit ints as with 64-bit ones.
func TestFitLapHugeTotal(t *testing.T) {
	t.Parallel()
	weights := make([]int, 3000)
	for i := range weights {
		weights[i] = MaxWeight - i%2 // a sum near 3·10^9, gcd 1
	}
	out := fitLap(weights)
	total := int64(0)
	for _, w := range out {
		require.GreaterOrEqual(t, w, 1)
		total += int64(w)
	}
	assert.LessOrEqual(t, total, int64(max(maxLap, 4*len(weights))))
}
