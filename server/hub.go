package server

import (
	"sync"

	"github.com/xchat-im/xchat/server/store"
)

// hub wakes the pushers of connected devices when their mailbox changes.
// A wake-up is a hint: pushers always read the store.
type hub struct {
	mu   sync.Mutex
	subs map[store.Mailbox]map[chan struct{}]chan struct{} // wake-up channel to take-over channel
}

func newHub() *hub {
	return &hub{subs: make(map[store.Mailbox]map[chan struct{}]chan struct{})}
}

// subscribe returns a channel that receives a value after each notify of
// mb (coalesced), a channel that is closed when a newer subscription of mb
// takes over (spec/02-transport.md section 2.7: a new connection of a
// device ends the push stream of the older one), and a function that ends
// the subscription.
func (h *hub) subscribe(mb store.Mailbox) (<-chan struct{}, <-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	over := make(chan struct{})
	h.mu.Lock()
	m := h.subs[mb]
	if m == nil {
		m = make(map[chan struct{}]chan struct{})
		h.subs[mb] = m
	}
	for _, o := range m {
		select {
		case <-o:
		default:
			close(o)
		}
	}
	m[ch] = over
	h.mu.Unlock()
	return ch, over, func() {
		h.mu.Lock()
		delete(h.subs[mb], ch)
		if len(h.subs[mb]) == 0 {
			delete(h.subs, mb)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(mb store.Mailbox) {
	h.mu.Lock()
	for ch := range h.subs[mb] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}
