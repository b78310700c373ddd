package main

import (
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestPendingNote(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pending []wire.Mailbox
		want    string
	}{
		{[]wire.Mailbox{{Address: "alice@a.test", Device: 2}},
			"sent; copy for your device 2 pending (sent again at the next send or connection)"},
		{[]wire.Mailbox{{Address: "alice@a.test", Device: 2}, {Address: "alice@a.test", Device: 3}, {Address: "bob@a.test", Device: 1}},
			"sent; copies for your device 2, your device 3, bob@a.test device 1 pending (sent again at the next send or connection)"},
	} {
		if got := pendingNote("alice@a.test", tt.pending); got != tt.want {
			t.Errorf("pendingNote(%v) = %q, want %q", tt.pending, got, tt.want)
		}
	}
}
