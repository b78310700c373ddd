package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/store"
)

// domainKeys are the domain's secrets a process serves with.
type domainKeys struct {
	cert  ed25519.PrivateKey     // signs sender certificates
	reset quic.StatelessResetKey // QUIC stateless resets
}

// loadDomainKeys returns the domain's keys. A store shared by several
// processes (store.DomainKeys: PostgreSQL) holds them, so that every
// process signs with the same key: the first process stores the keys of its
// data directory's files, or new ones when it has none; every process then
// uses the stored keys, and a key file that differs from them is ignored
// with a warning. Without a shared store the keys are the data directory's
// files, made on first start.
func loadDomainKeys(ctx context.Context, dataDir string, st store.Store, log *slog.Logger) (domainKeys, error) {
	var k domainKeys
	certPath, resetPath := filepath.Join(dataDir, CertKeyFile), filepath.Join(dataDir, ResetKeyFile)
	shared, ok := st.(store.DomainKeys)
	if !ok {
		cert, err := loadOrCreateCertKey(certPath)
		if err != nil {
			return k, fmt.Errorf("sender-certificate key: %w", err)
		}
		rk, err := loadOrCreateSecret(resetPath, len(k.reset))
		if err != nil {
			return k, fmt.Errorf("stateless reset key: %w", err)
		}
		k.cert = cert
		copy(k.reset[:], rk)
		return k, nil
	}

	var fileSeed []byte
	if _, err := os.Stat(certPath); err == nil {
		cert, err := loadOrCreateCertKey(certPath)
		if err != nil {
			return k, fmt.Errorf("sender-certificate key: %w", err)
		}
		fileSeed = cert.Seed()
	} else if !errors.Is(err, os.ErrNotExist) {
		return k, fmt.Errorf("sender-certificate key: %w", err)
	}
	seed, err := sharedKey(ctx, shared, store.KeySenderCert, fileSeed, certPath, ed25519.SeedSize, log)
	if err != nil {
		return k, fmt.Errorf("sender-certificate key: %w", err)
	}
	k.cert = ed25519.NewKeyFromSeed(seed)

	var fileReset []byte
	if _, err := os.Stat(resetPath); err == nil {
		if fileReset, err = loadOrCreateSecret(resetPath, len(k.reset)); err != nil {
			return k, fmt.Errorf("stateless reset key: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return k, fmt.Errorf("stateless reset key: %w", err)
	}
	rk, err := sharedKey(ctx, shared, store.KeyStatelessReset, fileReset, resetPath, len(k.reset), log)
	if err != nil {
		return k, fmt.Errorf("stateless reset key: %w", err)
	}
	copy(k.reset[:], rk)
	return k, nil
}

// sharedKey returns the shared store's key named name, proposing fromFile
// (the key of the file at path), or a new random key of size bytes when
// fromFile is nil.
func sharedKey(ctx context.Context, shared store.DomainKeys, name string, fromFile []byte, path string, size int, log *slog.Logger) ([]byte, error) {
	proposed := fromFile
	if proposed == nil {
		proposed = make([]byte, size)
		rand.Read(proposed)
	}
	key, err := shared.DomainKey(ctx, name, proposed)
	if err != nil {
		return nil, err
	}
	if len(key) != size {
		return nil, fmt.Errorf("the database holds a %d-byte key %s, want %d bytes", len(key), name, size)
	}
	if fromFile != nil && subtle.ConstantTimeCompare(key, fromFile) != 1 {
		log.Warn("a key file differs from the domain key in the shared database: the database's key is used, the file ignored",
			"file", path, "key", name)
	}
	return key, nil
}
