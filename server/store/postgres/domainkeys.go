package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

var _ store.DomainKeys = (*Store)(nil)

// DomainKey returns the domain key named name, storing proposed first when
// the table domain_keys has none. The insert and the read are separate
// statements, so that the read sees the row of a process that inserted
// first while this one's insert waited on it.
func (s *Store) DomainKey(ctx context.Context, name string, proposed []byte) ([]byte, error) {
	if len(proposed) == 0 {
		return nil, errors.New("postgres: domain key: empty proposed key")
	}
	var key []byte
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		if _, err := c.Exec(ctx, `INSERT INTO domain_keys (name, key, created_at_ms) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, proposed, millis(time.Now())); err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT key FROM domain_keys WHERE name = $1`, name).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: domain key %s: %w", name, err)
	}
	return key, nil
}
