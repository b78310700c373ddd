// Package daemon assembles and runs one homeserver process: what xchatd
// serve does, and what tests, xchat-bench and the conformance CI start,
// in-process or as xchatd serve.
//
// # Starting
//
// [Start] takes a [Config] and returns a running [Daemon]; [Daemon.Addr] is
// the address it listens on, [Daemon.Close] shuts it down and
// [Daemon.Wait] waits for the end. [Run] does the three for xchatd serve:
// it serves until its context ends. The fields of Config are the flags of
// xchatd serve, and a zero field takes its flag's default; a few have no
// flag (relay backoff and expiry, the clock of link tokens and blobs, the
// interval of blob sweeps), for tests. Once it accepts connections a
// daemon writes one line to Config.Out, beginning with [ReadyPrefix];
// processes that start xchatd serve wait for it and read the address from
// it with [ParseReady].
//
// # Child processes
//
// Who must run the xchatd binary itself (the conformance CI, which tests
// the server as it is deployed, and xchat-bench, which measures the
// server's CPU and memory apart from the load it generates) starts it with
// the same Config: [Config.Args] gives the xchatd serve flags for it, and
// [StartProcess] starts the command and waits for the ready line; the
// [Process] it returns stops with SIGTERM, the same shutdown as
// [Daemon.Close]. Tests in-process use [Start], through package
// server/servertest.
//
// # What a daemon assembles
//
// In this order: the UDP socket (first, so that a taken port leaves
// nothing behind); the data directory, mode 0700; the domain's TLS
// certificate, or a development CA and certificate made under
// DataDir/[DevCADir]; the sender-certificate signing key ([CertKeyFile])
// and the QUIC stateless-reset key ([ResetKeyFile]), made on first start,
// mode 0600; the trust roots for peers; the store; the client server
// (package server) with its rate limits and blob limits; and the
// federation (package federation) with its relay workers, on the same QUIC
// transport, given the server's fed-blob-get budget per origin domain.
// Logs go to Config.Logger and never hold message content, tokens, keys,
// the sender of an envelope or anything about a file but counts.
//
// # Stores
//
// Without Config.DB the store is the embedded SQLite database [DBFile] in
// the data directory. With a PostgreSQL URL, several processes of one
// domain may share one database (multi-process mode): the domain's
// sender-certificate and stateless-reset keys are kept in the database
// ([store.DomainKeys]; the first process stores those of its data
// directory, a key file that differs is ignored with a warning), so every
// process signs alike whatever its data directory; each process's pushers also poll
// their mailboxes every 2 s in case a notification from another process
// was lost. The schema is created and upgraded by [Migrate] (xchatd
// migrate), never by Start. [CreateInvite] (xchatd invite) and
// [CopyToPostgres] (xchatd copy) work on the same stores.
//
// # Shutdown
//
// [Daemon.Close], like SIGINT or SIGTERM for xchatd serve, stops accepting
// connections, lets in-flight requests finish (up to 10 s), ends push
// streams and gives clients a moment to read their last responses, closes
// every connection, stops the relay workers (queued envelopes stay queued,
// for this process's next start or another process of the domain) and
// closes the store.
//
// # Imports
//
// Package server (the client API) and package federation (the relay
// between domains) do not import each other: server defines the
// [server.Federation] it needs and federation the [federation.Local] it
// needs, both over the shared store contract (server/store) and rate
// limiter (server/ratelimit). This package is the one place that imports
// both and wires them together; server/imports_test.go checks it.
package daemon
