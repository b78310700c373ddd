package store

import "context"

// Purger is implemented by stores that can make deleted rows leave their
// files (both backends). A delete (Ack, Expire, SetPolicy, RemoveDevice,
// DeleteOutbound) removes a row from what the store reads, but its bytes can
// stay on disk in the database's pages and write-ahead log until the
// database engine reuses or rewrites them; Purge makes that happen now, as
// far as the backend allows (spec/16-security.md section 16.11). Both
// backends also purge by themselves on a timer.
type Purger interface {
	Purge(ctx context.Context) error
}
