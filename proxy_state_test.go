package lb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateCtx(t *testing.T) {
	t.Parallel()
	type key struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	st := &proxyState{}
	st.ctx = stateCtx{Context: parent, st: st}
	var ctx context.Context = &st.ctx

	assert.Same(t, st, ctx.Value(stateKey{}))
	assert.Equal(t, "v", ctx.Value(key{}), "the parent's values")
	assert.Nil(t, ctx.Value("other"))

	// The transport derives its own context from the request's. A child
	// of stateCtx hangs on the parent's cancelCtx, as a child of a valueCtx
	// does, and is canceled with it at once (not by a goroutine that
	// context starts for parents it does not know).
	child, stop := context.WithCancel(ctx)
	defer stop()
	require.NoError(t, ctx.Err())
	cancel(assert.AnError)
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(ctx), assert.AnError)
	assert.ErrorIs(t, child.Err(), context.Canceled)
}
