package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// The bytes of blob-get responses being written are held in the frame
// budgets: once a connection's budget is spent, a further read waits, and
// is refused with rate_limited when it waits too long; a response written
// lets the next one in.
func TestHoldResponseWithinBudget(t *testing.T) {
	t.Parallel()
	c := &conn{s: &Server{frames: wire.NewBudget(frameBudgetServer)}, frames: wire.NewBudget(frameBudgetConn)}
	const n int64 = wire.BlobPartSize + blobResponseOverhead
	fits := frameBudgetConn / n
	holds := make([]responseHold, fits)
	for i := range holds {
		if err := c.holdResponse(t.Context(), &holds[i], n); err != nil {
			t.Fatalf("response %d of %d: %v", i, fits, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var extra responseHold
	err := c.holdResponse(ctx, &extra, n)
	if pe, ok := errors.AsType[*wire.Error](err); !ok || pe.Code != wire.CodeRateLimited || pe.RetryAfter <= 0 {
		t.Fatalf("response %d: %v, want rate_limited with a retry-after", fits+1, err)
	}
	if held := c.frames.Held(); held != fits*n {
		t.Fatalf("a refused read holds bytes: %d held, want %d", held, fits*n)
	}
	holds[0].done()
	if err := c.holdResponse(t.Context(), &extra, n); err != nil {
		t.Fatalf("after a response was written: %v", err)
	}
	extra.done()
	for i := range holds {
		holds[i].done()
	}
	if c.frames.Held() != 0 || c.s.frames.Held() != 0 {
		t.Fatalf("bytes left held: connection %d, server %d", c.frames.Held(), c.s.frames.Held())
	}
}
