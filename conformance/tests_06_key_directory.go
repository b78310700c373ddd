package conformance

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/xchat-im/xchat/spec/wire"
)

// keyDirectoryTests are the tests of section 6, key directory: get-devices
// and key packages.
var keyDirectoryTests = []*Test{
	{ID: "6.1/1", Level: MUST, Summary: "get-devices lists the account's devices with their keys exactly as registered",
		Cite: "The response MUST list every device of the account, in ascending order of device identifier, each with its keys exactly as registered",
		run:  test6_1_1_GetDevicesAsRegistered},
	{ID: "6.1/2", Level: MUST, Summary: "get-devices of an unknown account is unknown_account",
		Cite: "The account exists, else unknown_account (11).",
		run:  test6_1_2_GetDevicesUnknownAccount},
	{ID: "6.1/3", Level: MUST, Summary: "right after remove-device-ok the device is gone: not listed, and claims and envelopes for it are unknown_device (no stale cache)",
		Cite: "The response MUST list every device of the account, in ascending order of device identifier, each with its keys exactly as registered",
		run:  test6_1_3_RemovedAtOnce},
	{ID: "6.1/4", Level: MUST, Summary: "get-devices lists the devices of an account in ascending order of identifier",
		Cite: "The response MUST list every device of the account, in ascending order of device identifier, each with its keys exactly as registered",
		run:  test6_1_4_DevicesAscending},
	{ID: "6.3/1", Level: MUST, Summary: "publish-key-packages stores one-time packages and reports the pool size",
		Cite: "On success the new packages (and the last-resort replacement) MUST be stored atomically and durably before the response, which gives in key 1 the number of one-time packages now in the device's pool.",
		run:  test6_3_1_PublishStoresOneTime},
	{ID: "6.3/2", Level: MUST, Summary: "publishing 101 packages is limit_exceeded and stores nothing",
		Cite: "The common checks (section 3.3.1) MUST reject ... more than 100 packages in key 1 as limit_exceeded (21).",
		run:  test6_3_2_Publish101Packages},
	{ID: "6.3/3", Level: MUST, Summary: "an empty key package and one of 16,385 bytes are malformed",
		Cite: "The common checks (section 3.3.1) MUST reject a package of 0 or more than 16,384 bytes as malformed",
		run:  test6_3_3_PackageLengthBounds},
	{ID: "6.3/4", Level: MUST, Summary: "a pool beyond the announced limit is limit_exceeded, and nothing of that request is stored",
		Cite: "The server then MUST check that the pool would hold at most 1000 packages after adding them, else limit_exceeded (21).",
		run:  test6_3_4_PoolLimit},
	{ID: "6.3/5", Level: MUST, Summary: "a new last-resort package replaces the one stored before",
		Cite: "On success the new packages (and the last-resort replacement) MUST be stored atomically and durably before the response",
		run:  test6_3_5_LastResortReplaced},
	{ID: "6.4/1", Level: MUST, Summary: "each one-time package is handed out once, exactly as published, then no_key_package",
		Cite: "If the device's pool is not empty, the server removes one one-time package from it and returns it with key 2 false.",
		run:  test6_4_1_ClaimOneTimeOnce},
	{ID: "6.4/2", Level: MUST, Summary: "with a one-time package left a claim gets it (false); then the last-resort package, with true, and kept",
		Cite: "Otherwise, if the device has a last-resort package, the server returns it with key 2 true and keeps it.",
		run:  test6_4_2_ClaimLastResort},
	{ID: "6.4/3", Level: MUST, Summary: "concurrent claims hand each one-time package to one claimant",
		Cite: "A server MUST hand each one-time package to at most one claimant, also under concurrent claims",
		run:  test6_4_3_ConcurrentClaims},
	{ID: "6.4/4", Level: MUST, Summary: "claiming for an unknown device or account is unknown_device",
		Cite: "The device (key 2) of the account (key 1) exists, else unknown_device (12); an unknown account also gives unknown_device.",
		run:  test6_4_4_ClaimUnknownDevice},
	{ID: "6.5/1", Level: SHOULD, Summary: "claims of one device's one-time packages are limited: within 30 claims one gets the last-resort package, and the pool is left as it was",
		Cite: "servers SHOULD limit the one-time packages handed out per requesting account and per target device. A claim past either limit gets the last-resort package (section 6.4, step 3)",
		run:  test6_5_1_ClaimLimitPerDevice},
}

// test6_1_1_GetDevicesAsRegistered checks 6.1/1: get-devices lists the account's devices with their keys exactly as registered.
func test6_1_1_GetDevicesAsRegistered(t *T) {
	as := t.takeAccounts(2, func(a *account, i int) bool { return i == 0 || oneDevice(a) })
	var ok wire.GetDevicesOK
	t.do(t.connect(as[0]), &wire.GetDevices{Address: as[1].address}, &ok)
	k := as[1].dev.keys()
	if len(ok.Devices) != 1 || ok.Devices[0].ID != as[1].id || !bytes.Equal(ok.Devices[0].Keys.SigKey, k.SigKey) ||
		ok.Devices[0].Keys.KEM != k.KEM || !bytes.Equal(ok.Devices[0].Keys.HPKEKey, k.HPKEKey) {
		t.Fatalf("devices %+v", ok.Devices)
	}
}

// test6_1_2_GetDevicesUnknownAccount checks 6.1/2: get-devices of an unknown account is unknown_account.
func test6_1_2_GetDevicesUnknownAccount(t *T) {
	t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: t.env.newAddress()}, wire.CodeUnknownAccount)
}

// test6_3_1_PublishStoresOneTime checks 6.3/1: publish-key-packages stores one-time packages and reports the pool size.
func test6_3_1_PublishStoresOneTime(t *T) {
	a := t.accountsWhere(1, cleanKP)[0]
	c := t.connect(a)
	var ok wire.PublishKeyPackagesOK
	t.do(c, &wire.PublishKeyPackages{OneTime: [][]byte{{1}, {2}, {3}}}, &ok)
	a.kpDirty = true
	if ok.Stored != 3 {
		t.Fatalf("pool of %d, want 3", ok.Stored)
	}
	t.do(c, &wire.PublishKeyPackages{}, &ok)
	if ok.Stored != 3 {
		t.Fatalf("pool of %d after an empty publish, want 3", ok.Stored)
	}
	t.drainKP(c, a, 3)
}

// test6_3_2_Publish101Packages checks 6.3/2: publishing 101 packages is limit_exceeded and stores nothing.
func test6_3_2_Publish101Packages(t *T) {
	a := t.accountsWhere(1, cleanKP)[0]
	c := t.connect(a)
	kps := make([][]byte, 101)
	for i := range kps {
		kps[i] = []byte{byte(i)}
	}
	t.expectErr(c, &wire.PublishKeyPackages{OneTime: kps, LastResort: []byte("lr")}, wire.CodeLimitExceeded)
	t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, wire.CodeNoKeyPackage)
}

// test6_3_3_PackageLengthBounds checks 6.3/3: an empty key package and one of 16,385 bytes are malformed.
func test6_3_3_PackageLengthBounds(t *T) {
	c := t.connect(t.account())
	t.expectRaw(c, frameOf(hx("a2 00 05 01 81 40")), wire.CodeMalformed)
	t.expectErr(c, &wire.PublishKeyPackages{LastResort: make([]byte, 16385)}, wire.CodeMalformed)
}

// test6_3_4_PoolLimit checks 6.3/4: a pool beyond the announced limit is limit_exceeded, and nothing of that request is stored.
func test6_3_4_PoolLimit(t *T) {
	a := t.accountsWhere(1, func(a *account) bool { return !a.lastResort })[0]
	c := t.connect(a)
	a.kpDirty = true
	var ok wire.PublishKeyPackagesOK
	t.do(c, &wire.PublishKeyPackages{}, &ok)
	limit := t.env.info.Limits.MaxKeyPackages
	for ok.Stored < limit {
		n := min(100, limit-ok.Stored)
		kps := make([][]byte, n)
		for i := range kps {
			kps[i] = []byte{byte(i)}
		}
		t.do(c, &wire.PublishKeyPackages{OneTime: kps}, &ok)
	}
	t.expectErr(c, &wire.PublishKeyPackages{OneTime: [][]byte{{1}}, LastResort: []byte("lr")}, wire.CodeLimitExceeded)
	t.do(c, &wire.PublishKeyPackages{}, &ok)
	if ok.Stored != limit {
		t.Fatalf("pool of %d, want %d", ok.Stored, limit)
	}
}

// test6_4_1_ClaimOneTimeOnce checks 6.4/1: each one-time package is handed out once, exactly as published, then no_key_package.
func test6_4_1_ClaimOneTimeOnce(t *T) {
	as := t.accountsWhere(2, cleanKP)
	owner, claimer := t.connect(as[0]), t.connect(as[1])
	kps := [][]byte{[]byte("opaque package one \x00\xff"), []byte("opaque package two")}
	t.do(owner, &wire.PublishKeyPackages{OneTime: kps}, &wire.PublishKeyPackagesOK{})
	var got [][]byte
	for range kps {
		var ok wire.ClaimKeyPackageOK
		t.do(claimer, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, &ok)
		if ok.LastResort {
			t.Fatalf("a one-time package was marked last-resort")
		}
		got = append(got, ok.KeyPackage)
	}
	slices.SortFunc(got, bytes.Compare)
	slices.SortFunc(kps, bytes.Compare)
	if !slices.EqualFunc(got, kps, bytes.Equal) {
		t.Fatalf("claimed %q, published %q", got, kps)
	}
	t.expectErr(claimer, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, wire.CodeNoKeyPackage)
}

// test6_4_2_ClaimLastResort checks 6.4/2: the last-resort package is handed out with true and kept.
func test6_4_2_ClaimLastResort(t *T) {
	a := t.kpDevice()
	c := t.connect(a)
	lr := []byte("last resort " + a.address)
	one := []byte("one-time " + a.address)
	t.do(c, &wire.PublishKeyPackages{OneTime: [][]byte{one}, LastResort: lr}, &wire.PublishKeyPackagesOK{})
	var ok wire.ClaimKeyPackageOK
	t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &ok)
	if ok.LastResort || !bytes.Equal(ok.KeyPackage, one) {
		t.Fatalf("claimed %q (last resort %v) while a one-time package was left", ok.KeyPackage, ok.LastResort)
	}
	for range 2 {
		var ok wire.ClaimKeyPackageOK
		t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &ok)
		if !ok.LastResort || !bytes.Equal(ok.KeyPackage, lr) {
			t.Fatalf("claimed %q (last resort %v)", ok.KeyPackage, ok.LastResort)
		}
	}
}

// test6_4_3_ConcurrentClaims checks 6.4/3: concurrent claims hand each one-time package to one claimant.
func test6_4_3_ConcurrentClaims(t *T) {
	as := t.accountsWhere(2, cleanKP)
	owner, claimer := t.connect(as[0]), t.connect(as[1])
	kps := make([][]byte, 10)
	for i := range kps {
		kps[i] = fmt.Appendf(nil, "package %d", i)
	}
	t.do(owner, &wire.PublishKeyPackages{OneTime: kps}, &wire.PublishKeyPackagesOK{})
	var mu sync.Mutex
	seen := map[string]int{}
	none := 0
	var wg sync.WaitGroup
	var failure error
	for range 20 {
		wg.Go(func() {
			var ok wire.ClaimKeyPackageOK
			err := claimer.request(t.ctx, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, &ok)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				seen[string(ok.KeyPackage)]++
			case wire.CodeOf(err) == wire.CodeNoKeyPackage:
				none++
			default:
				failure = err
			}
		})
	}
	wg.Wait()
	if failure != nil {
		t.Fatalf("claim: %v", failure)
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%q handed out %d times", k, n)
		}
	}
	if len(seen) != 10 || none != 10 {
		t.Fatalf("%d packages handed out, %d no_key_package; want 10 and 10", len(seen), none)
	}
}

// test6_4_4_ClaimUnknownDevice checks 6.4/4: claiming for an unknown device or account is unknown_device.
func test6_4_4_ClaimUnknownDevice(t *T) {
	a := t.account()
	c := t.connect(a)
	t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: 4000000000}, wire.CodeUnknownDevice)
	t.expectErr(c, &wire.ClaimKeyPackage{Address: t.env.newAddress(), Device: 1}, wire.CodeUnknownDevice)
}

// test6_5_1_ClaimLimitPerDevice checks 6.5/1: claims of one device's one-time packages are limited: within 30 claims one gets the last-resort package, and the pool is left as it was.
//
// It spends the claim budget of an account's first device and leaves
// packages in its pool, so it takes an account whose key packages no
// other test can use anyway (6.3/4 fills a pool), and marks it so.
func test6_5_1_ClaimLimitPerDevice(t *T) {
	a := t.accountsWhere(1, func(a *account) bool { return !cleanKP(a) })[0]
	a.kpDirty, a.lastResort = true, true
	c := t.connect(a)
	const n = 30
	var pub wire.PublishKeyPackagesOK
	t.do(c, &wire.PublishKeyPackages{}, &pub)
	var kps [][]byte
	for i := pub.Stored; i < n && i < t.env.info.Limits.MaxKeyPackages; i++ {
		kps = append(kps, fmt.Appendf(nil, "claim limit %d %s", i, a.address))
	}
	lr := fmt.Appendf(nil, "claim limit last resort %s", a.address)
	t.do(c, &wire.PublishKeyPackages{OneTime: kps, LastResort: lr}, &pub)
	claimed := 0
	for claimed < n {
		var ok wire.ClaimKeyPackageOK
		t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &ok)
		if ok.LastResort {
			if !bytes.Equal(ok.KeyPackage, lr) {
				t.Fatalf("claim %d: last-resort package %q, want %q", claimed+1, short(ok.KeyPackage), lr)
			}
			break
		}
		claimed++
	}
	if claimed == n {
		t.Fatalf("%d one-time packages of one device were handed to one account without a limit", n)
	}
	var after wire.PublishKeyPackagesOK
	t.do(c, &wire.PublishKeyPackages{}, &after)
	if after.Stored != pub.Stored-uint64(claimed) {
		t.Fatalf("pool of %d after %d one-time claims and one past the limit, want %d: the claim past the limit touched the pool",
			after.Stored, claimed, pub.Stored-uint64(claimed))
	}
}

// drainKP claims n one-time packages of a, leaving its pool empty.
func (t *T) drainKP(c *conn, a *account, n int) {
	for range n {
		t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &wire.ClaimKeyPackageOK{})
	}
	a.kpDirty = false
}

// kpDevice returns the linked device that the pool keeps, for tests that
// leave a last-resort package behind: the accounts' first devices stay
// without one (cleanKP), and no test publishes one-time packages for a
// linked device, so its pool is empty.
func (t *T) kpDevice() *account {
	a := t.accountsFirst(1, twoDevices)[0]
	return a.as(t.extraDevice(a, t.connect(a)))
}

// cleanKP selects accounts without a last-resort package and with an empty
// one-time pool.
func cleanKP(a *account) bool { return !a.lastResort && !a.kpDirty }

// test6_1_3_RemovedAtOnce checks 6.1/3: right after remove-device-ok the device is gone from get-devices, claims and sends (no stale cache).
func test6_1_3_RemovedAtOnce(t *T) {
	a := t.accountsWhere(1, twoDevices)[0]
	c := t.connect(a)
	l := t.extraDevice(a, c)
	var ok wire.GetDevicesOK
	t.do(c, &wire.GetDevices{Address: a.address}, &ok)
	if len(ok.Devices) < 2 {
		t.Fatalf("get-devices lists %d devices before the removal", len(ok.Devices))
	}
	e := envelopeFor(a)
	e.To.Device = l.id
	t.sendOK(c, e)
	t.do(c, &wire.RemoveDevice{Device: l.id}, nil)
	a.extra = slices.DeleteFunc(a.extra, func(x linked) bool { return x.id == l.id })
	t.do(c, &wire.GetDevices{Address: a.address}, &ok)
	for _, x := range ok.Devices {
		if x.ID == l.id {
			t.Fatalf("get-devices lists the removed device %d", l.id)
		}
	}
	t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: l.id}, wire.CodeUnknownDevice)
	e = envelopeFor(a)
	e.To.Device = l.id
	t.sendCode(c, e, wire.CodeUnknownDevice)
}

// test6_1_4_DevicesAscending checks 6.1/4: get-devices lists the devices of an account in ascending order of identifier.
func test6_1_4_DevicesAscending(t *T) {
	as := t.accountsFirst(2, twoDevices)
	t.extraDevice(as[0], t.connect(as[0]))
	var ok wire.GetDevicesOK
	t.do(t.connect(as[1]), &wire.GetDevices{Address: as[0].address}, &ok)
	if len(ok.Devices) < 2 {
		t.Fatalf("%d devices listed, the account has %d", len(ok.Devices), 1+len(as[0].extra))
	}
	for i := 1; i < len(ok.Devices); i++ {
		if ok.Devices[i].ID <= ok.Devices[i-1].ID {
			t.Fatalf("devices listed in the order %v", deviceIDs(ok.Devices))
		}
	}
}

func deviceIDs(ds []wire.DeviceInfo) []uint32 {
	var out []uint32
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// test6_3_5_LastResortReplaced checks 6.3/5: a new last-resort package replaces the one stored before.
func test6_3_5_LastResortReplaced(t *T) {
	a := t.kpDevice()
	c := t.connect(a)
	for i := range 2 {
		lr := fmt.Appendf(nil, "last resort %d of %s", i, a.address)
		t.do(c, &wire.PublishKeyPackages{LastResort: lr}, &wire.PublishKeyPackagesOK{})
		var ok wire.ClaimKeyPackageOK
		t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &ok)
		if !ok.LastResort || !bytes.Equal(ok.KeyPackage, lr) {
			t.Fatalf("after publishing %q, claimed %q (last resort %v)", lr, ok.KeyPackage, ok.LastResort)
		}
	}
}
