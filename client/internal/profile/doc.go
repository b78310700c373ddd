// Package profile is the local store of an xchat client: one SQLite file,
// readable by its owner only, holding the device's identity and keys, its
// contacts' delivery tokens, MLS group states and key packages, the outbox,
// received messages and what the receive path keeps between envelopes
// (processed envelope identifiers, held messages, fragments, links), and
// the files of its conversations with the state of their uploads and
// downloads.
//
// # Using the store
//
// Open opens (creating when missing) a profile file and brings its schema up
// to date. Every read and write happens in a transaction: Update runs a
// function in a write transaction, committed when it returns nil and rolled
// back otherwise; View runs one in a read transaction. The methods of Tx are
// typed, one concept a file (identity.go, contacts.go, groups.go, …). A
// Store has one connection: a function given to Update or View must not call
// Update or View itself.
//
// A row that does not exist gives an error wrapping ErrNotFound (test it with
// errors.Is); any other error is the database's, wrapped, and means the
// operation did not happen. Error strings never hold secrets (keys, tokens,
// message text).
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a committed
// transaction survives a crash of the process or the machine. Write
// transactions begin IMMEDIATE, so two processes using one profile never
// interleave their writes; a process waits up to 5 seconds for the other's
// lock. The file and its WAL and shared-memory files have mode 0600.
//
// # Adding a table or a column
//
//  1. Append a step to migrations in migrate.go: SQL that takes the schema
//     from the previous step to the new one (CREATE TABLE, ALTER TABLE …
//     ADD COLUMN, CREATE INDEX, or an UPDATE that fills a new column). Never
//     edit or reorder a step that was released: profiles on disk went through
//     it. The schema's version (PRAGMA user_version) is the number of steps
//     applied; Open applies the missing ones in one transaction, and refuses a
//     profile of a later version than it knows.
//  2. Write the typed methods in a file of their own, on Tx, with the row
//     type they read and write; return ErrNotFound (wrapped) for a missing
//     row.
//  3. Extend TestMigrateFromCurrentSchema's data when the step changes
//     existing rows, and add a round-trip test of the new methods.
package profile
