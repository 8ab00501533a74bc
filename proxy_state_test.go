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

	child, stop := context.WithCancel(ctx) // as the transport derives its own
	defer stop()
	require.NoError(t, ctx.Err())
	cancel(assert.AnError)
	<-child.Done()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(ctx), assert.AnError)
	assert.ErrorIs(t, child.Err(), context.Canceled)
}
