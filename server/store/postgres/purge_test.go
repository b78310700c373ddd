package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// pageinspect returns the schema that holds the pageinspect extension,
// creating the extension when it is missing, or skips without it.
func pageinspect(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	ctx := t.Context()
	find := func() (string, error) {
		var schema string
		err := conn.QueryRow(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pageinspect'`).Scan(&schema)
		return schema, err
	}
	schema, err := find()
	if errors.Is(err, pgx.ErrNoRows) {
		// Another test may create it at the same moment: look again after
		// a failure.
		_, cerr := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public`)
		schema, err = find()
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(cerr, &pgErr) && (pgErr.Code == "0A000" || pgErr.Code == "42501" || pgErr.Code == "58P01") {
				t.Skipf("pageinspect is not available: %v", cerr)
			}
			t.Fatalf("CREATE EXTENSION pageinspect: %v (%v)", cerr, err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

// liveTupleData returns the data of every tuple that still has storage in
// the heap of table (and of its TOAST table): live tuples and dead ones
// that no vacuum has removed yet.
func liveTupleData(t *testing.T, conn *pgx.Conn, pi, table string) []byte {
	t.Helper()
	ctx := t.Context()
	var rels []string
	rels = append(rels, table)
	var toast *string
	if err := conn.QueryRow(ctx, `SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0`, table).Scan(&toast); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if toast != nil {
		rels = append(rels, *toast)
	}
	var all []byte
	for _, rel := range rels {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t_data FROM generate_series(0, pg_relation_size($1::regclass) / current_setting('block_size')::int - 1) AS blk,
			LATERAL %[1]s.heap_page_items(%[1]s.get_raw_page($1::text, blk::int)) WHERE t_data IS NOT NULL`, pgx.Identifier{pi}.Sanitize()), rel)
		if err != nil {
			t.Fatalf("reading the pages of %s: %v", rel, err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("reading the pages of %s: %v", rel, err)
		}
	}
	return all
}

// TestPurgeRemovesDeletedTuples checks that the rows Ack, Expire and
// SetPolicy delete no longer have tuples in the heap once Purge returned
// (spec/16-security.md section 16.11): PostgreSQL keeps a deleted row as a
// dead tuple, with its data, until a vacuum removes it.
func TestPurgeRemovesDeletedTuples(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	s := open(t, u, store.DefaultLimits())
	conn := connect(t, u)
	pi := pageinspect(t, conn)
	mb := account(t, s, "alice@example.org")
	gone, kept := storetest.Deleted(t, s, mb)

	// A vacuum cannot remove a dead tuple while a transaction that may
	// still see it is open anywhere in the database (other tests run at the
	// same time): purge again until none is left, within a deadline.
	var p store.Purger = s
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var all []byte
	for {
		if err := p.Purge(ctx); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		all = all[:0]
		var left []string
		for _, table := range []string{"mailbox", "policy_verifiers"} {
			b := liveTupleData(t, conn, pi, table)
			if found := storetest.Contains(b, gone); len(found) > 0 {
				left = append(left, fmt.Sprintf("table %s has tuples with %d of %d deleted markers after Purge, e.g. %q", table, len(found), len(gone), found[0]))
			}
			all = append(all, b...)
		}
		if len(left) == 0 {
			break
		}
		if ctx.Err() != nil {
			for _, l := range left {
				t.Error(l)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if found := storetest.Contains(all, kept); len(found) != len(kept) {
		t.Errorf("the tuples hold %d of the %d kept markers: the inspection does not see the store's data", len(found), len(kept))
	}
}

// TestPurgeNeedsTheOwner checks that Purge fails, naming the tables, when
// the store's role may not vacuum them, rather than succeed while
// PostgreSQL skips them with a warning.
func TestPurgeNeedsTheOwner(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	conn := connect(t, u)
	ctx := t.Context()
	b := make([]byte, 6)
	rand.Read(b)
	role := "xchat_pgtest_role_" + hex.EncodeToString(b)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN; GRANT USAGE ON SCHEMA %[2]s TO %[1]s;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[2]s TO %[1]s`, role, schema)); err != nil {
		t.Skipf("cannot create a role to test with: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := dial(ctx, u)
		if err != nil {
			t.Errorf("dropping role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf(`DROP OWNED BY %[1]s; DROP ROLE %[1]s`, role)); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.User = url.User(role)
	s, err := postgres.Open(ctx, pu.String(), store.DefaultLimits(), nil)
	if err != nil {
		t.Skipf("cannot connect as %s: %v", role, err)
	}
	defer s.Close()
	err = s.Purge(ctx)
	if err == nil || !strings.Contains(err.Error(), "mailbox") || !strings.Contains(err.Error(), "owner") {
		t.Fatalf("Purge as a role that does not own the tables: %v; want an error naming mailbox and the owner", err)
	}
}
