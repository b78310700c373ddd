package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// The tests use the database in TEST_DATABASE_URL, each store (or group of
// stores sharing state) in a schema of its own, xchat_pgtest_<random>,
// created for it and dropped when its test ends, so that test packages and
// tests run in parallel without seeing each other. Without
// TEST_DATABASE_URL the tests are skipped, except when CI=true: then they
// fail.

// baseURL returns TEST_DATABASE_URL, or skips (fails in CI) without it.
func baseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TEST_DATABASE_URL is not set, and CI=true: the PostgreSQL store must be tested in CI")
		}
		t.Skip("TEST_DATABASE_URL is not set: skipping the PostgreSQL store tests")
	}
	return u
}

// withParams returns the connection string base with the given parameters
// added, unless base sets them already. base is a URL or a key/value
// string.
func withParams(t testing.TB, base string, params ...string) string {
	t.Helper()
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("TEST_DATABASE_URL: %v", err)
		}
		q := u.Query()
		for i := 0; i < len(params); i += 2 {
			if !q.Has(params[i]) {
				q.Set(params[i], params[i+1])
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for i := 0; i < len(params); i += 2 {
		if !strings.Contains(base, params[i]+"=") {
			base += " " + params[i] + "=" + params[i+1]
		}
	}
	return base
}

// newSchema creates an empty schema, migrated when migrate is set, and
// returns a connection string that uses it. The schema is dropped when t
// ends, after the stores opened on it were closed.
func newSchema(t testing.TB, migrate bool) string {
	t.Helper()
	base := baseURL(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "xchat_pgtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dial(ctx, base)
	if err != nil {
		t.Fatalf("connecting to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := dial(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u := withParams(t, base, "search_path", schema, "pool_max_conns", "4")
	if migrate {
		if err := postgres.Migrate(ctx, u); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return u
}

// dial opens a connection to u, which may carry pool settings.
func dial(ctx context.Context, u string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// connect opens a connection to u, which may carry pool settings, and
// closes it when t ends.
func connect(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	conn, err := dial(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// open opens the store at u and closes it when t ends.
func open(t testing.TB, u string, limits store.Limits) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, limits, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	baseURL(t)
	storetest.Run(t, func(t *testing.T, limits store.Limits) store.Store {
		return open(t, newSchema(t, true), limits)
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	storetest.RunReopen(t, func(t *testing.T, limits store.Limits) (store.Store, func(*testing.T) store.Store) {
		u := newSchema(t, true)
		return open(t, u, limits), func(t *testing.T) store.Store { return open(t, u, limits) }
	})
}

func TestOpenUnmigrated(t *testing.T) {
	t.Parallel()
	u := newSchema(t, false)
	s, err := postgres.Open(t.Context(), u, store.DefaultLimits(), nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of an unmigrated schema succeeded")
	}
	if !strings.Contains(err.Error(), "xchatd migrate --db") {
		t.Fatalf("Open of an unmigrated schema: %v; want advice to run xchatd migrate", err)
	}
}

func TestMigrateNewerSchema(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	conn := connect(t, u)
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), u, store.DefaultLimits(), nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v; want an error about a newer schema", err)
	}
	if err := postgres.Migrate(t.Context(), u); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate of a newer schema: %v; want an error about a newer schema", err)
	}
}

// Several processes migrating one schema at once take turns; migrating
// again changes nothing.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	u := newSchema(t, false)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if err := postgres.Migrate(t.Context(), u); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if err := postgres.Migrate(t.Context(), u); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	conn := connect(t, u)
	var n, v int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 3 || v != 3 {
		t.Fatalf("schema_migrations has %d rows up to version %d, want 3 rows up to version 3", n, v)
	}
	s := open(t, u, store.DefaultLimits())
	account(t, s, "alice@example.org")
}

func TestMigrateMissingSchema(t *testing.T) {
	t.Parallel()
	u := withParams(t, baseURL(t), "search_path", "xchat_pgtest_does_not_exist")
	if err := postgres.Migrate(t.Context(), u); err == nil {
		t.Fatal("Migrate of a missing schema succeeded")
	}
}

func TestClaimOutboundRefusesNoLease(t *testing.T) {
	t.Parallel()
	s := open(t, newSchema(t, true), store.DefaultLimits())
	for _, lease := range []time.Duration{0, -time.Second} {
		if _, err := s.ClaimOutbound(t.Context(), "b.example", time.Now(), lease, 10); err == nil {
			t.Errorf("ClaimOutbound with lease %v succeeded", lease)
		}
	}
}

// account creates an account and returns its mailbox.
func account(t testing.TB, s store.Store, address string) store.Mailbox {
	t.Helper()
	dev := store.Device{Address: address, ID: 1, SigKey: make([]byte, 32), KEM: 0x20, HPKEKey: make([]byte, 32),
		CreatedAt: time.UnixMilli(time.Now().UnixMilli())}
	if err := s.CreateAccount(context.Background(), dev, nil); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return store.Mailbox{Address: address, Device: 1}
}

// envelope returns an envelope to mb with an ID made from n and a 1 KiB
// payload; outboundEnvelope one for domain, with a 32-byte token too.
var (
	envelope         = storetest.BenchEnvelope
	outboundEnvelope = storetest.BenchOutbound
)

// An Enqueue on one store is seen by Listen on another store of the same
// database, once per mailbox stored into.
func TestNotify(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	s1 := open(t, u, store.DefaultLimits())
	s2 := open(t, u, store.DefaultLimits())
	// The channel is the database's: other tests' stores notify on it too.
	// Listen only for this test's domain.
	b := make([]byte, 8)
	rand.Read(b)
	domain := "@" + hex.EncodeToString(b) + ".test"
	alice := account(t, s1, "alice"+domain)
	bob := account(t, s1, "bob"+domain)
	probe := account(t, s1, "probe"+domain)

	got := make(chan store.Mailbox, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s2.Listen(ctx, func(mb store.Mailbox) {
			if strings.HasSuffix(mb.Address, domain) {
				got <- mb
			}
		})
	}()

	// Listen gives no sign when it is listening: probe until it hears.
	deadline := time.After(10 * time.Second)
	n := 0
probing:
	for {
		if _, err := s1.Enqueue(t.Context(), []store.Envelope{envelope(probe, n)}); err != nil {
			t.Fatal(err)
		}
		n++
		select {
		case mb := <-got:
			if mb == probe {
				break probing
			}
		case err := <-done:
			t.Fatalf("Listen: %v", err)
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("Listen heard no probe within 10s")
		}
	}
	// Drain late probes.
	for quiet := false; !quiet; {
		select {
		case <-got:
		case <-time.After(200 * time.Millisecond):
			quiet = true
		}
	}

	res, err := s1.Enqueue(t.Context(), []store.Envelope{envelope(alice, 1), envelope(bob, 2), envelope(alice, 3),
		envelope(store.Mailbox{Address: "nobody" + domain, Device: 1}, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if res[3] == nil {
		t.Fatal("Enqueue to an unknown device succeeded")
	}
	heard := make(map[store.Mailbox]int)
	timeout := time.After(10 * time.Second)
	for len(heard) < 2 {
		select {
		case mb := <-got:
			heard[mb]++
		case err := <-done:
			t.Fatalf("Listen: %v", err)
		case <-timeout:
			t.Fatalf("within 10s, Listen heard only %v", heard)
		}
	}
	// Nothing else: one notification per mailbox, none for duplicates.
	if _, err := s1.Enqueue(t.Context(), []store.Envelope{envelope(alice, 1)}); err != nil {
		t.Fatal(err)
	}
	select {
	case mb := <-got:
		heard[mb]++
	case <-time.After(300 * time.Millisecond):
	}
	if len(heard) != 2 || heard[alice] != 1 || heard[bob] != 1 {
		t.Fatalf("Listen heard %v, want alice and bob once each", heard)
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Listen after its context ended: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return when its context ended")
	}

	// Close ends a Listen in progress.
	go func() { done <- s2.Listen(t.Context(), func(store.Mailbox) {}) }()
	time.Sleep(100 * time.Millisecond)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Listen after Close: %v, want store.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return when the store was closed")
	}
}

// Two stores on one database ("two processes") claiming the same outbound
// rows at once never get the same row.
func TestOutboundClaimsTwoStores(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	stores := []*postgres.Store{open(t, u, store.DefaultLimits()), open(t, u, store.DefaultLimits())}
	const rows = 500
	out := make([]store.Outbound, rows)
	for i := range out {
		out[i] = outboundEnvelope("b.example", i)
	}
	if err := stores[0].EnqueueOutbound(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var (
		mu      sync.Mutex
		claimed = make(map[int64]int)
		wg      sync.WaitGroup
	)
	for g := range 12 {
		s := stores[g%2]
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbound(t.Context(), "b.example", now, time.Hour, 1+g%7)
				if err != nil {
					t.Errorf("ClaimOutbound: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, o := range got {
					claimed[o.Seq]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != rows {
		t.Fatalf("%d envelopes claimed, want %d", len(claimed), rows)
	}
	for seq, n := range claimed {
		if n != 1 {
			t.Errorf("seq %d claimed %d times", seq, n)
		}
	}
}

// Two stores on one database enqueueing to one mailbox at once never
// exceed its limit, and its counters stay right.
func TestMailboxLimitTwoStores(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	limits := store.Limits{MailboxMaxEnvelopes: 50, MailboxMaxBytes: 1 << 40, MaxOneTimeKeys: 10} // bytes beyond int4
	stores := []*postgres.Store{open(t, u, limits), open(t, u, limits)}
	alice := account(t, stores[0], "alice@example.org")
	bob := account(t, stores[0], "bob@example.org")
	var (
		mu     sync.Mutex
		stored int
		wg     sync.WaitGroup
	)
	for g := range 10 {
		s := stores[g%2]
		wg.Go(func() {
			for c := range 10 {
				n := 2 * (10*g + c)
				// Both mailboxes, in both orders, to provoke deadlocks.
				envs := []store.Envelope{envelope(alice, n), envelope(bob, n+1)}
				if g%2 == 1 {
					envs[0], envs[1] = envs[1], envs[0]
				}
				res, err := s.Enqueue(t.Context(), envs)
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				for _, err := range res {
					switch {
					case err == nil:
						mu.Lock()
						stored++
						mu.Unlock()
					case !errors.Is(err, store.ErrLimit):
						t.Errorf("Enqueue: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if stored != 100 {
		t.Fatalf("%d envelopes stored in two mailboxes of 50", stored)
	}
	for _, mb := range []store.Mailbox{alice, bob} {
		got, err := stores[1].Pending(t.Context(), mb, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 50 {
			t.Fatalf("%v holds %d envelopes, want 50", mb, len(got))
		}
		// Acknowledging all makes room for exactly 50 again.
		ids := make([]store.EnvelopeID, len(got))
		for i := range got {
			ids[i] = got[i].ID
		}
		if err := stores[1].Ack(t.Context(), mb, ids); err != nil {
			t.Fatal(err)
		}
		envs := make([]store.Envelope, 51)
		for i := range envs {
			envs[i] = envelope(mb, 1000+i)
		}
		res, err := stores[0].Enqueue(t.Context(), envs)
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range res {
			if (i < 50) != (err == nil) {
				t.Fatalf("after acknowledging all, envelope %d: %v", i, err)
			}
		}
	}
}

// populate fills s with records of every kind.
func populate(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	t0 := time.UnixMilli(1_750_000_000_000)
	for i, addr := range []string{"carol@x.test", "alice@x.test", "bob@x.test"} {
		dev := store.Device{Address: addr, ID: 1, SigKey: bytes.Repeat([]byte{byte(i)}, 32), KEM: 0x647a,
			HPKEKey: bytes.Repeat([]byte{byte(i + 10)}, 1216), CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.CreateAccount(ctx, dev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPolicy(ctx, "alice@x.test", store.Policy{Verifiers: [][]byte{{3}, {1}, {2}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicy(ctx, "bob@x.test", store.Policy{RequestLaneOpen: true, Verifiers: [][]byte{{9}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.CreateInvite(ctx, []byte(fmt.Sprintf("invite-%d", 2-i)), t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	alice := store.Mailbox{Address: "alice@x.test", Device: 1}
	bob := store.Mailbox{Address: "bob@x.test", Device: 1}
	carol := store.Mailbox{Address: "carol@x.test", Device: 1}
	// Carol had devices 2 and 3 and removed 3: her next device is 4. Bob
	// has device 2.
	for i, addr := range []string{"carol@x.test", "carol@x.test", "bob@x.test"} {
		hash := []byte(fmt.Sprintf("link-%d", i))
		if err := s.CreateLink(ctx, addr, hash, t0, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		dev := store.Device{Address: addr, SigKey: bytes.Repeat([]byte{byte(i + 20)}, 32), KEM: 0x647a,
			HPKEKey: bytes.Repeat([]byte{byte(i + 30)}, 1216), CreatedAt: t0}
		if _, err := s.LinkDevice(ctx, dev, hash, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveDevice(ctx, store.Mailbox{Address: "carol@x.test", Device: 3}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		mb      store.Mailbox
		oneTime [][]byte
		lr      []byte
	}{
		{bob, [][]byte{[]byte("b-2"), []byte("b-1")}, []byte("b-lr")},
		{alice, [][]byte{[]byte("a-9"), []byte("a-3")}, nil},
		{bob, [][]byte{[]byte("b-0")}, nil},
		{carol, nil, []byte("c-lr")},
	} {
		if _, err := s.PublishKeyPackages(ctx, p.mb, p.oneTime, p.lr); err != nil {
			t.Fatal(err)
		}
	}
	var envs []store.Envelope
	for i := range 20 {
		mb := []store.Mailbox{alice, bob, carol}[i%3]
		envs = append(envs, store.Envelope{ID: store.EnvelopeID{byte(20 - i), 0xee}, To: mb,
			Sealed: bytes.Repeat([]byte{byte(i)}, i*7), Lane: store.Lane(i % 3), ReceivedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	if _, err := s.Enqueue(ctx, envs[:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, envs[12:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, bob, []store.EnvelopeID{envs[4].ID}); err != nil {
		t.Fatal(err)
	}
	var out []store.Outbound
	for i := range 9 {
		o := outboundEnvelope([]string{"z.test", "y.test"}[i%2], i)
		o.Envelope.ReceivedAt = t0.Add(time.Duration(i) * time.Millisecond)
		o.Envelope.Sealed = bytes.Repeat([]byte{byte(i)}, i)
		o.From = []store.Mailbox{alice, bob}[i%2]
		switch i % 3 {
		case 0:
			o.Token = nil
		case 1:
			o.Token = []byte(fmt.Sprintf("token-%d", i))
		}
		out = append(out, o)
	}
	if err := s.EnqueueOutbound(ctx, out); err != nil {
		t.Fatal(err)
	}
	// Claimed rows carry attempts and a due time.
	if _, err := s.ClaimOutbound(ctx, "z.test", t0, time.Hour, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimOutbound(ctx, "z.test", t0.Add(2*time.Hour), time.Hour, 1); err != nil {
		t.Fatal(err)
	}
}

// export returns s's records, printed.
func export(t *testing.T, s store.Exporter) []string {
	t.Helper()
	var out []string
	err := s.Export(t.Context(), func(r store.Record) error {
		out = append(out, printRecord(r))
		return nil
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return out
}

// exportRecords returns s's records.
func exportRecords(t *testing.T, s store.Exporter) []store.Record {
	t.Helper()
	var out []store.Record
	err := s.Export(t.Context(), func(r store.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return out
}

// printRecord prints every field of r, byte strings with their nil-ness.
func printRecord(r store.Record) string {
	b := func(p []byte) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", p)
	}
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	switch {
	case r.Account != nil:
		a := r.Account
		var vs []string
		for _, v := range a.Policy.Verifiers {
			vs = append(vs, b(v))
		}
		return fmt.Sprintf("account %s at %d open %t verifiers %v last device %d", a.Address, ms(a.CreatedAt), a.Policy.RequestLaneOpen, vs, a.LastDevice)
	case r.Device != nil:
		d := r.Device
		return fmt.Sprintf("device %s/%d sig %s kem %d hpke %s at %d", d.Address, d.ID, b(d.SigKey), d.KEM, b(d.HPKEKey), ms(d.CreatedAt))
	case r.Invite != nil:
		return fmt.Sprintf("invite %s until %d", b(r.Invite.Hash), ms(r.Invite.Expires))
	case r.KeyPackage != nil:
		k := r.KeyPackage
		return fmt.Sprintf("key package %v %s last resort %t", k.Mailbox, b(k.Data), k.LastResort)
	case r.Envelope != nil:
		e := r.Envelope
		// An empty payload may come as nil: the SQLite store exports it so.
		return fmt.Sprintf("envelope %x to %v lane %d at %d sealed %q", e.ID, e.To, e.Lane, ms(e.ReceivedAt), e.Sealed)
	case r.Outbound != nil:
		o := r.Outbound
		e := o.Envelope
		return fmt.Sprintf("outbound %s %x to %v at %d sealed %q token %s from %v attempts %d next %d",
			o.Domain, e.ID, e.To, ms(e.ReceivedAt), e.Sealed, b(o.Token), o.From, o.Attempts, ms(o.NextTry))
	}
	return "empty record"
}

// sameExport fails the test unless got and want list the same records.
func sameExport(t *testing.T, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("record %d of %d:\n  %s\nwant (of %d)\n  %s", i, len(got), g, len(want), w)
		}
	}
}

// importAll imports recs into s in batches of n.
func importAll(t *testing.T, s store.Importer, recs []store.Record, n int) {
	t.Helper()
	for len(recs) > 0 {
		k := min(n, len(recs))
		if err := s.Import(t.Context(), recs[:k]); err != nil {
			t.Fatalf("Import: %v", err)
		}
		recs = recs[k:]
	}
}

// Export from one schema, Import into another: the second exports the
// same, and works on as the first would.
func TestExportImport(t *testing.T) {
	t.Parallel()
	limits := store.Limits{MailboxMaxEnvelopes: 8, MailboxMaxBytes: 1 << 20, MaxOneTimeKeys: 4}
	from := open(t, newSchema(t, true), limits)
	populate(t, from)
	// An empty token is not a missing one (the SQLite store cannot export
	// that difference, so populate has none).
	empty := outboundEnvelope("x.test", 100)
	empty.Token = []byte{}
	if err := from.EnqueueOutbound(t.Context(), []store.Outbound{empty}); err != nil {
		t.Fatal(err)
	}
	want := export(t, from)
	if !strings.Contains(want[len(want)-1], `token ""`) {
		t.Fatalf("an empty token exported as %s", want[len(want)-1])
	}
	kinds := make(map[string]bool)
	for _, r := range want {
		kinds[strings.Fields(r)[0]] = true
	}
	if len(kinds) != 6 {
		t.Fatalf("populate made records of %d kinds: %v", len(kinds), kinds)
	}

	to := open(t, newSchema(t, true), limits)
	importAll(t, to, exportRecords(t, from), 4)
	sameExport(t, export(t, to), want)
	ctx := t.Context()

	// The mailbox counters came along: alice holds 7 of 8.
	alice := store.Mailbox{Address: "alice@x.test", Device: 1}
	wantPending, err := from.Pending(ctx, alice, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	gotPending, err := to.Pending(ctx, alice, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotPending) != 7 || len(wantPending) != 7 {
		t.Fatalf("alice holds %d envelopes after Import, %d before; want 7", len(gotPending), len(wantPending))
	}
	for i := range gotPending {
		g, w := gotPending[i].Envelope, wantPending[i].Envelope
		if g.ID != w.ID || g.Lane != w.Lane || !g.ReceivedAt.Equal(w.ReceivedAt) || !bytes.Equal(g.Sealed, w.Sealed) {
			t.Fatalf("envelope %d after Import %+v, want %+v", i, g, w)
		}
	}
	res, err := to.Enqueue(ctx, []store.Envelope{envelope(alice, 1), envelope(alice, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != nil || !errors.Is(res[1], store.ErrLimit) {
		t.Fatalf("Enqueue of 2 to a mailbox holding 7 of 8 after Import: %v", res)
	}
	// Key packages keep their order: bob's go b-2, b-1, b-0, then b-lr.
	bob := store.Mailbox{Address: "bob@x.test", Device: 1}
	for _, want := range []string{"b-2", "b-1", "b-0", "b-lr"} {
		kp, _, err := to.ClaimKeyPackage(ctx, bob)
		if err != nil || string(kp) != want {
			t.Fatalf("ClaimKeyPackage after Import = %q, %v; want %q", kp, err, want)
		}
	}
	// Leases came along: of z.test's five, one is leased until t0+1h (one
	// attempt), one until t0+3h (two attempts), and three were never
	// claimed.
	t0 := time.UnixMilli(1_750_000_000_000)
	got, err := to.ClaimOutbound(ctx, "z.test", t0.Add(time.Minute), time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("claimed %d due envelopes after Import, want 3", len(got))
	}
	got, err = to.ClaimOutbound(ctx, "z.test", t0.Add(5*time.Hour), time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	attempts := make(map[int]int)
	for _, o := range got {
		attempts[o.Attempts]++
	}
	if len(got) != 5 || attempts[2] != 4 || attempts[3] != 1 {
		t.Fatalf("after Import, claimed %d envelopes with attempts %v; want 5: 4 with 2 attempts, 1 with 3", len(got), attempts)
	}
	// Seqs are new but in order.
	if got[0].Seq >= got[len(got)-1].Seq {
		t.Fatal("outbound seqs out of order after Import")
	}
}

// The embedded SQLite store copies into PostgreSQL as it is.
func TestImportFromSQLite(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	from, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	populate(t, from)
	recs := exportRecords(t, from)
	want := make([]string, len(recs))
	for i, r := range recs {
		want[i] = printRecord(r)
	}
	to := open(t, u, store.DefaultLimits())
	importAll(t, to, recs, 1000)
	sameExport(t, export(t, to), want)
}

// Import fails, and writes nothing, when the store is not empty.
func TestImportNotEmpty(t *testing.T) {
	t.Parallel()
	s := open(t, newSchema(t, true), store.DefaultLimits())
	account(t, s, "alice@x.test")
	before := export(t, s)
	recs := []store.Record{
		{Account: &store.AccountRecord{Address: "zed@x.test", CreatedAt: time.UnixMilli(1)}},
		{Account: &store.AccountRecord{Address: "alice@x.test", CreatedAt: time.UnixMilli(1)}},
	}
	if err := s.Import(t.Context(), recs); err == nil {
		t.Fatal("Import of an existing account succeeded")
	}
	sameExport(t, export(t, s), before)
}
