package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Accounts cannot be enumerated quickly (spec/06-key-directory.md section
// 6.5): lookups of this domain that name an unknown account or device
// spend a budget of the requesting account; once it is spent, every lookup
// of this domain by the account gets rate_limited, naming the limit, so
// that the answer reveals nothing more. Other accounts keep their budget.
// This belongs in conformance later (with a server started with a small
// budget).
func TestLookupsOfUnknownAccountsAreLimited(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		LookupMisses: server.Rate{Burst: 3, Interval: time.Hour}}})
	ra, _ := registered(t, s, "alice@a.test", nil)
	rc, _ := registered(t, s, "carol@a.test", nil)
	registered(t, s, "bob@a.test", nil)
	// Lookups that find something cost nothing.
	for range 5 {
		wantDevices(t, ra, "bob@a.test", 1)
	}
	var devs wire.GetDevicesOK
	servertest.MustCode(t, ra.Request(&wire.GetDevices{Address: "nobody1@a.test"}, &devs), wire.CodeUnknownAccount)
	servertest.MustCode(t, ra.Request(&wire.ClaimKeyPackage{Address: "nobody2@a.test", Device: 1}, &wire.ClaimKeyPackageOK{}), wire.CodeUnknownDevice)
	servertest.MustCode(t, ra.Request(&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 7}, &wire.ClaimKeyPackageOK{}), wire.CodeUnknownDevice)
	for i, req := range []wire.Request{
		&wire.GetDevices{Address: "nobody4@a.test"},
		&wire.GetDevices{Address: "bob@a.test"},
		&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 1},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rateLimited(t, ra.Request(req, &wire.OK{}), "unknown accounts or devices")
		})
	}
	servertest.MustCode(t, rc.Request(&wire.GetDevices{Address: "nobody1@a.test"}, &devs), wire.CodeUnknownAccount)
}
