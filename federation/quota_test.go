package federation

import (
	"testing"

	"github.com/xchat-im/xchat/server/store"
)

func TestQuotasBoundAccountsAndDomains(t *testing.T) {
	t.Parallel()
	var q quotas
	// Per destination domain, from all accounts together.
	q.reset([]store.OutboundUse{{From: "x@a.test", Domain: "b.test", Envelopes: outboundDomainEnvelopes - 1, Bytes: 100}})
	if !q.reserve("y@a.test", "b.test", 10) {
		t.Fatal("the last envelope under the domain's bound was refused")
	}
	if q.reserve("z@a.test", "b.test", 10) {
		t.Fatal("an envelope over the domain's bound was counted")
	}
	if !q.reserve("z@a.test", "c.test", 10) {
		t.Fatal("another domain is bounded by b.test's count")
	}
	q.release("y@a.test", "b.test", 10)
	if !q.reserve("z@a.test", "b.test", 10) {
		t.Fatal("a released envelope still counts")
	}
	// Bytes, per account and per domain.
	q.reset([]store.OutboundUse{{From: "x@a.test", Domain: "b.test", Envelopes: 1, Bytes: outboundAccountBytes - 5}})
	if q.reserve("x@a.test", "c.test", 6) {
		t.Fatal("an envelope over the account's bytes was counted")
	}
	if !q.reserve("x@a.test", "c.test", 5) {
		t.Fatal("an envelope up to the account's bytes was refused")
	}
	q.reset([]store.OutboundUse{{From: "x@a.test", Domain: "b.test", Envelopes: 1, Bytes: outboundDomainBytes}})
	if q.reserve("y@a.test", "b.test", 1) {
		t.Fatal("an envelope over the domain's bytes was counted")
	}
	// A reset forgets what it does not list; releasing what it forgot
	// does not go below zero.
	q.reset(nil)
	q.release("x@a.test", "b.test", 1)
	if len(q.accounts) != 0 || len(q.domains) != 0 {
		t.Fatalf("counts after releasing unknown envelopes: %v %v", q.accounts, q.domains)
	}
}
