package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// open opens the store at path and closes it when t ends.
func open(t testing.TB, path string, limits store.Limits) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, limits, nil)
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
	storetest.Run(t, func(t *testing.T, limits store.Limits) store.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"), limits)
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	storetest.RunReopen(t, func(t *testing.T, limits store.Limits) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "store.db")
		return open(t, path, limits), func(t *testing.T) store.Store { return open(t, path, limits) }
	})
}

// waitFor fails the test unless cond becomes true within ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// account creates an account and returns its mailbox.
func account(t testing.TB, s store.Store, address string) store.Mailbox {
	t.Helper()
	dev := store.Device{Address: address, ID: 1, SigKey: make([]byte, 32), KEM: 0x20, HPKEKey: make([]byte, 32), CreatedAt: time.Now()}
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

// enqueueAsync enqueues one envelope per goroutine and returns a function
// that waits for all and fails the test unless each was stored.
func enqueueAsync(t *testing.T, ctx context.Context, s store.Store, mb store.Mailbox, n int) (wait func()) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := s.Enqueue(ctx, []store.Envelope{envelope(mb, i)})
			if err == nil {
				err = res[0]
			}
			if err != nil {
				t.Errorf("Enqueue %d: %v", i, err)
			}
		})
	}
	return wg.Wait
}

func TestFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, store.DefaultLimits())
	mb := account(t, s, "alice@example.org")
	if _, err := s.Enqueue(t.Context(), []store.Envelope{envelope(mb, 1)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, store.DefaultLimits())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path, store.DefaultLimits(), nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open: %v; want an error about a newer schema", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "store.db"), store.DefaultLimits(), nil)
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

func TestCloseFlushesQueued(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, store.DefaultLimits())
	mb := account(t, s, "alice@example.org")

	release := s.BlockWriter(t)
	const n = 50
	wait := enqueueAsync(t, context.Background(), s, mb, n)
	waitFor(t, "the envelopes to queue", func() bool { return s.Queued() == n })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to start", s.IsClosed)
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wait()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Enqueue(t.Context(), []store.Envelope{envelope(mb, n)}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
	}

	s = open(t, path, store.DefaultLimits())
	got, err := s.Pending(t.Context(), mb, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("after reopening, %d envelopes wait, want %d", len(got), n)
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	mb := account(t, s, "alice@example.org")

	// Hold the writer so that every call is queued when it is free again.
	release := s.BlockWriter(t)
	txs0, ops0 := s.Stats()
	const n = 200
	wait := enqueueAsync(t, t.Context(), s, mb, n)
	waitFor(t, "the envelopes to queue", func() bool { return s.Queued() == n })
	release()
	wait()
	txs, ops := s.Stats()
	txs, ops = txs-txs0, ops-ops0
	t.Logf("%d Enqueue calls in %d transactions", ops, txs)
	if ops != n {
		t.Fatalf("writer ran %d operations, want %d", ops, n)
	}
	if txs >= n || txs > 2 {
		t.Fatalf("%d queued Enqueue calls took %d transactions, want 1", n, txs)
	}
	got, err := s.Pending(t.Context(), mb, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d envelopes wait, want %d", len(got), n)
	}
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	account(t, s, "alice@example.org")

	release := s.BlockWriter(t)
	txs0, _ := s.Stats()
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			// Even calls create new accounts, odd ones a taken address.
			address := fmt.Sprintf("user%d@example.org", i)
			if i%2 == 1 {
				address = "alice@example.org"
			}
			dev := store.Device{Address: address, ID: 1, SigKey: make([]byte, 32), HPKEKey: make([]byte, 32)}
			errs[i] = s.CreateAccount(context.Background(), dev, nil)
		})
	}
	waitFor(t, "the calls to queue", func() bool { return s.Queued() == len(errs) })
	release()
	wg.Wait()
	if txs, _ := s.Stats(); txs-txs0 > 2 {
		t.Fatalf("%d queued calls took %d transactions", len(errs), txs-txs0)
	}
	for i, err := range errs {
		if i%2 == 1 {
			if !errors.Is(err, store.ErrAccountExists) {
				t.Errorf("call %d: %v, want ErrAccountExists", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
		if _, err := s.Devices(t.Context(), fmt.Sprintf("user%d@example.org", i)); err != nil {
			t.Errorf("account of call %d: %v", i, err)
		}
	}
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	mb := account(t, s, "alice@example.org")

	release := s.BlockWriter(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(ctx, []store.Envelope{envelope(mb, 1)})
		done <- err
	}()
	waitFor(t, "the envelope to queue", func() bool { return s.Queued() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue: %v, want context.Canceled", err)
	}
	release()
	// The canceled operation is skipped; a later one still runs.
	if _, err := s.Enqueue(t.Context(), []store.Envelope{envelope(mb, 2)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(t.Context(), mb, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != envelope(mb, 2).ID {
		t.Fatalf("%d envelopes wait, want only the second", len(got))
	}
}

// TestCountersMatchMailbox checks the mailbox counters the store keeps
// against the envelopes actually waiting, after a mix of every operation
// that adds or removes envelopes.
func TestCountersMatchMailbox(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	limits := store.Limits{MailboxMaxEnvelopes: 40, MailboxMaxBytes: 30 << 10}
	s := open(t, path, limits)
	ctx := t.Context()
	mbs := []store.Mailbox{account(t, s, "a@example.org"), account(t, s, "b@example.org"), account(t, s, "c@example.org")}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	for round := range 20 {
		var envs []store.Envelope
		for range 10 {
			n := rng.IntN(150) // IDs repeat: duplicates
			e := envelope(mbs[n%3], n)
			e.Sealed = make([]byte, rng.IntN(2000))
			e.ReceivedAt = t0.Add(time.Duration(round) * time.Minute)
			envs = append(envs, e)
		}
		if _, err := s.Enqueue(ctx, envs); err != nil {
			t.Fatal(err)
		}
		var ids []store.EnvelopeID
		for range 3 {
			ids = append(ids, envelope(mbs[0], rng.IntN(150)).ID)
		}
		if err := s.Ack(ctx, mbs[rng.IntN(3)], ids); err != nil {
			t.Fatal(err)
		}
		if round%5 == 4 {
			if _, err := s.Expire(ctx, t0.Add(time.Duration(round-2)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT d.address, d.mb_count, d.mb_bytes,
		(SELECT count(*) FROM mailbox m WHERE m.address = d.address AND m.device = d.id),
		(SELECT coalesce(sum(length(sealed)), 0) FROM mailbox m WHERE m.address = d.address AND m.device = d.id)
		FROM devices d`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			address                         string
			count, bytes, realCount, realBy int64
		)
		if err := rows.Scan(&address, &count, &bytes, &realCount, &realBy); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d envelopes, %d bytes", address, realCount, realBy)
		if count != realCount || bytes != realBy {
			t.Errorf("%s: counters say %d envelopes, %d bytes; mailbox holds %d, %d", address, count, bytes, realCount, realBy)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
