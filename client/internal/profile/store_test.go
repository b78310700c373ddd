package profile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// open opens a store in a new directory, closed when the test ends.
func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profile.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// update runs f in a write transaction and fails the test on error.
func update(t *testing.T, s *Store, f func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), f); err != nil {
		t.Fatal(err)
	}
}

// view runs f in a read transaction and fails the test on error.
func view(t *testing.T, s *Store, f func(tx *Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), f); err != nil {
		t.Fatal(err)
	}
}

func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	var v int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The file, its WAL and its shared memory are readable by their owner
// only, even when the file existed with a wider mode; the schema is at
// the latest version.
func TestOpenPrivateFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "profile.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	update(t, s, func(tx *Tx) error { return tx.SetContactToken("a@b.test", []byte{1}) })
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if v := userVersion(t, s); v != len(migrations) {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
	var sync int
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous %d (want 2, FULL), %v", sync, err)
	}
}

// What a committed transaction wrote is there after the store is closed
// and opened again.
func TestReopen(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	id := &Identity{Address: "alice@a.test", Device: 3, Server: "127.0.0.1:4433", SigSeed: bytes.Repeat([]byte{1}, 32),
		HPKEKey: []byte{2, 3}, Token: []byte{4}, State: 2}
	update(t, s, func(tx *Tx) error { return tx.InsertIdentity(id) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	view(t, s, func(tx *Tx) error {
		got, err := tx.Identity()
		if err != nil {
			return err
		}
		if got.Address != id.Address || got.Device != 3 || !bytes.Equal(got.SigSeed, id.SigSeed) || got.State != 2 {
			t.Fatalf("identity after reopening: %+v", got)
		}
		return nil
	})
}

// A function that fails rolls back everything its transaction wrote, and
// its error comes back as is.
func TestUpdateRollsBack(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	errStop := errors.New("stop")
	err := s.Update(t.Context(), func(tx *Tx) error {
		if err := tx.SetContactToken("bob@a.test", []byte{1}); err != nil {
			return err
		}
		if err := tx.MarkProcessed([]byte{9}); err != nil {
			return err
		}
		return errStop
	})
	if err != errStop {
		t.Fatalf("Update returned %v, want the function's error", err)
	}
	view(t, s, func(tx *Tx) error {
		if _, err := tx.ContactToken("bob@a.test"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("contact token after rollback: %v", err)
		}
		if seen, err := tx.Processed([]byte{9}); err != nil || seen {
			t.Fatalf("processed after rollback: %v, %v", seen, err)
		}
		return nil
	})
}

// Every read of one row gives ErrNotFound, wrapped, for a row that is not
// there.
func TestNotFound(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	reads := map[string]func(tx *Tx) error{
		"identity":      func(tx *Tx) error { _, err := tx.Identity(); return err },
		"contact token": func(tx *Tx) error { _, err := tx.ContactToken("x@a.test"); return err },
		"device list":   func(tx *Tx) error { _, err := tx.DeviceList("x@a.test"); return err },
		"group":         func(tx *Tx) error { _, err := tx.Group([]byte{1}); return err },
		"direct group":  func(tx *Tx) error { _, err := tx.DirectGroup("x@a.test"); return err },
		"key package":   func(tx *Tx) error { _, err := tx.KeyPackage([]byte{1}); return err },
		"own device":    func(tx *Tx) error { _, err := tx.OwnDeviceKey(2); return err },
		"link secret":   func(tx *Tx) error { _, err := tx.LinkSecret([]byte{1}, LinkShown); return err },
		"join link":     func(tx *Tx) error { _, err := tx.JoinLink(); return err },
		"message":       func(tx *Tx) error { _, err := tx.MessageSender([]byte{1}, []byte{2}); return err },
	}
	for name, read := range reads {
		err := s.View(t.Context(), read)
		if !errors.Is(err, ErrNotFound) || err == ErrNotFound {
			t.Errorf("%s: %v, want ErrNotFound wrapped", name, err)
		}
	}
}

// An error other than a missing row is not ErrNotFound, and a cancelled
// context stops a transaction before it starts.
func TestErrorsAreNotNotFound(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.View(ctx, func(tx *Tx) error { _, err := tx.Identity(); return err })
	if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled read gave %v", err)
	}
	// A store read that fails (its table is gone) is an error, not absent.
	if _, err := s.db.Exec(`DROP TABLE messages`); err != nil {
		t.Fatal(err)
	}
	err = s.View(t.Context(), func(tx *Tx) error { _, err := tx.MessageSender([]byte{1}, []byte{2}); return err })
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed read gave %v", err)
	}
}
