package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
	"github.com/xchat-im/xchat/server/store/sqlite"
)

// OpenStore opens a homeserver's store: the PostgreSQL database at dbURL
// when it is not empty (its schema must be migrated), else the embedded
// SQLite database in dataDir, created with the directory when missing.
func OpenStore(ctx context.Context, dataDir, dbURL string, log *slog.Logger) (store.Store, error) {
	if dbURL != "" {
		st, err := postgres.Open(ctx, dbURL, store.DefaultLimits(), log)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, DBFile), store.DefaultLimits(), log)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// Migrate applies the PostgreSQL schema migrations to the database at
// dbURL (xchatd migrate). It is safe to run while servers use it.
func Migrate(ctx context.Context, dbURL string) error {
	if err := postgres.Migrate(ctx, dbURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// CopyToPostgres copies the embedded store of dataDir into the PostgreSQL
// database at dbURL, which must be migrated and empty (xchatd copy), and
// returns the number of records copied and of finished blobs copied after
// them, part by part (unfinished uploads are not copied: their clients
// upload again); progress, if not nil, is called with the count of records
// after each batch. No server may use either store meanwhile.
func CopyToPostgres(ctx context.Context, dataDir, dbURL string, progress func(int)) (records, blobs int, err error) {
	path := filepath.Join(dataDir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("embedded store: %w", err)
	}
	from, err := sqlite.Open(ctx, path, store.DefaultLimits(), nil)
	if err != nil {
		return 0, 0, fmt.Errorf("embedded store: %w", err)
	}
	defer from.Close()
	to, err := postgres.Open(ctx, dbURL, store.DefaultLimits(), nil)
	if err != nil {
		return 0, 0, fmt.Errorf("PostgreSQL store: %w", err)
	}
	defer to.Close()
	records, err = server.CopyStore(ctx, from, to, progress)
	if err != nil {
		return records, 0, err
	}
	blobs, err = store.CopyBlobs(ctx, from, to, time.Now(), nil)
	return records, blobs, err
}

// CreateInvite makes a single-use invite token valid for ttl in a
// homeserver's store (the data directory's, or the PostgreSQL database at
// dbURL) and returns it (xchatd invite). It may run while servers use the
// same store.
func CreateInvite(ctx context.Context, dataDir, dbURL string, ttl time.Duration) (string, error) {
	if dbURL == "" {
		if _, err := os.Stat(filepath.Join(dataDir, DBFile)); err != nil {
			return "", fmt.Errorf("no homeserver store in %s: %w", dataDir, err)
		}
	}
	st, err := OpenStore(ctx, dataDir, dbURL, nil)
	if err != nil {
		return "", err
	}
	defer st.Close()
	raw := make([]byte, 18)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(token))
	if err := st.CreateInvite(ctx, h[:], time.Now().Add(ttl)); err != nil {
		return "", err
	}
	return token, st.Close()
}
