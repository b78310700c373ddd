// Package conformance is the black-box conformance suite of xchat
// homeservers: it checks, over the wire only, what spec/ says a server MUST
// (and SHOULD) do, section by section, in the manner of h2spec for HTTP/2
// and Complement for Matrix. The command xchat-conformance runs it.
//
// # Tests
//
// Every [Test] has an identifier "<section>/<n>" after the section of the
// specification it checks (for example "7.12/3"), a level ([MUST] or
// [SHOULD]), a one-line summary and the sentence of the specification it
// checks (its cite). [Tests] lists them; [Select] picks them by identifier
// or section.
//
// The tests of section N of the specification (spec/NN-name.md) are in the
// file tests_NN_name.go: a table, one row a test, with the test's id,
// level, summary, cite, needs and runner, followed by the runners. A
// test's runner is named after its id, with "." and "/" written "_",
// followed by "_" and a name: the test "3.1/1" runs test3_1_1_ZeroLength,
// "5.11.2/3" runs test5_11_2_3_InviteAndLinkToken. To go from an id to its
// code, search for the id (the row) or for "test<id>_" (the function). The
// one family of data-driven tests, which send one raw request on a fresh
// connection and expect one error code, share the runner testRaw and carry
// their payload and code in the row. Rows may be in any order; the suite
// runs and reports tests in the order of their ids.
//
// # Cites
//
// A test's cite quotes the sentence of the specification it checks, from
// the section its id names, without Markdown (no backticks or emphasis);
// "..." marks an elision, and the pieces around it must occur in that
// order within at most four consecutive sentences. The quoted sentence
// carries the BCP 14 keyword of the test's level: MUST, MUST NOT,
// REQUIRED, SHALL or SHALL NOT for a [MUST] test, SHOULD, SHOULD NOT,
// RECOMMENDED or NOT RECOMMENDED for a [SHOULD] test. A list item or table
// row is read with the sentences ending in ":" that introduce it, since it
// continues them: a row of a table introduced by "A receiver MUST apply
// these rules:" carries MUST. The package's tests check every cite against
// spec/ (TestCites).
//
// # Untested requirements
//
// Every sentence of sections 1 to 16 of the specification that states an
// absolute requirement (MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT) is
// cited by a test or listed, with the reason it is not tested, in
// UNTESTED.md in this directory: requirements on clients, durability
// across crashes, what a server keeps internally, and the few server
// requirements still without a test. TestRequirementsCovered fails on a
// requirement that is neither cited nor listed, and on a row of
// UNTESTED.md that names no requirement or one that a test cites.
//
// When the specification changes, run go test ./conformance/ and follow
// the failures: a cite no longer found is quoted again from the new text
// (TestCites); a new or reworded requirement is cited by the test that
// checks it, or listed in UNTESTED.md by its section and a distinctive
// fragment of the sentence, short enough to survive rewording elsewhere in
// the sentence (the failure prints each such sentence as a table row to
// shorten); a row whose requirement is gone or now tested is removed.
//
// # Harness
//
// A test tool cannot get everything over the wire. [Config] supplies the
// rest:
//
//   - the server's address, its domain and the CA that issued its
//     certificate;
//   - invite tokens, when the server's registration policy is "invite"
//     (the suite registers a few accounts, and the registration tests need
//     one token each);
//   - for the federation tests, a peer: a domain, a certificate and key for
//     it from a CA the server under test trusts (xchatd serve --trust-ca),
//     and the UDP address at which the server under test reaches that
//     domain (xchatd serve --peer DOMAIN=ADDRESS). The suite listens there
//     and plays the peer's homeserver in both directions.
//
// A test that needs something the configuration does not supply is
// reported as skipped, with what it needs; it never counts as passed.
//
// The suite registers a small pool of accounts and shares them between
// tests (a test holds its accounts exclusively while it runs), because
// servers limit registrations per source address (section 2.10).
//
// The tests of files (section 11) upload small blobs, a few MiB in all,
// and finish every blob they leave unfinished when they end, so that the
// pool's accounts keep their unfinished uploads free. The quota test fills
// one account's announced quota (server-info limits key 12) with
// unfinished blobs of the largest bucket, which takes no upload: with the
// default limits, two blobs of 5,319,713,863 bytes, then a third is
// quota_exceeded. A server must therefore not reserve disk space for an
// unfinished blob. No request deletes a blob, so that account keeps its
// blobs until they expire and the tests of files no longer use it. The
// quota and unfinished-upload tests are skipped when the server announces
// no such limit, or one that the suite cannot reach with the allowed
// number of unfinished uploads.
//
// # Teeth
//
// The package's tests put a TLS-terminating proxy, in test code only, in
// front of a real homeserver and make it break one MUST at a time (a
// mutant): each mutant must be caught by the test id aimed at that rule,
// and the same tests through a faithful proxy must pass. The proxy reaches
// device authentication through a narrow test hook (the TLS exporter of
// its upstream connection), since a signature bound to one TLS connection
// cannot cross a proxy by design (section 5.4).
//
// # What is not tested
//
// UNTESTED.md lists every untested MUST sentence. In general, behaviour
// that a black-box client cannot observe in seconds is left out:
// durability across crashes (the suite cannot restart the server; the
// delivery tests check that every envelope answered 0 reaches its
// recipient), retention after 30 days and outbound expiry after 7 days
// (only the announced limits are checked), the expiry of link tokens
// after 10 minutes (the suite cannot move the server's clock; 5.11.2/4
// checks that a used token is refused), timing side channels, the
// per-source connection and request limits, the per-origin relay,
// key-directory and blob-read budgets of federation (20,000 envelopes,
// 1,000 lookups and 64 MiB at once), the expiry and deletion of blobs (24 h
// after blob-create for an unfinished one, 30 days after blob-finish), and
// domain policy (it needs a server configured with allow or deny lists).
package conformance
