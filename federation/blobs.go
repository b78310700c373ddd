package federation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/ratelimit"
	"github.com/xchat-im/xchat/spec/wire"
)

// Files over federation (spec/11-files.md): a client's blob-get for a blob
// of another domain becomes a fed-blob-get to that domain's server, whose
// answer its server passes on. The blob's server learns which domain read
// which range and when, never which account; nothing is cached on the
// reader's server.

// blobResponseOverhead is the bytes of a blob-get-ok frame besides its
// data.
const blobResponseOverhead = 64

// responseWait bounds how long a fed-blob-get waits for its response's
// bytes in the frame budgets before it is refused with rate_limited and
// responseRetry.
const (
	responseWait  = 10 * time.Second
	responseRetry = time.Second
)

// unreachableRetry is the retry-after given to a client when the blob's
// domain cannot be reached or answers out of range.
const unreachableRetry = 30 * time.Second

// newBlobBudget returns the fed-blob-get budget per origin domain, in
// bytes, for rate bytes per second and a burst of burst bytes (at least
// one part), or nil (no limit) for a rate that is not positive.
func newBlobBudget(rate, burst int64) *ratelimit.Limiter {
	if rate <= 0 {
		return nil
	}
	return ratelimit.NewPerSecond(int(max(burst, wire.BlobPartSize)), float64(rate))
}

// responseHold holds, for one request stream, the bytes of the frame
// budgets taken for the response being written; serveStream gives them
// back once the response was written or the stream failed.
type responseHold struct{ release func() }

func (h *responseHold) done() {
	if h.release != nil {
		h.release()
		h.release = nil
	}
}

// holdResponse charges n bytes of response to the connection's frame
// budgets (framebudget.go), waiting at most responseWait, and records them
// in h.
func (in *inbound) holdResponse(ctx context.Context, h *responseHold, n int64) error {
	budgets := in.frameLimits().Budgets
	ctx, cancel := context.WithTimeout(ctx, responseWait)
	defer cancel()
	release, err := wire.AcquireAll(ctx, n, budgets)
	if err != nil {
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: responseRetry,
			Message: "too many blob bytes in flight on this connection or from this domain"}
	}
	h.release = release
	return nil
}

// blobGet answers fed-blob-get from origin: the bytes asked are charged to
// the origin's budget, then the range is read from the local store.
func (in *inbound) blobGet(ctx context.Context, origin string, h *responseHold, r *wire.FedBlobGet) ([]byte, error) {
	if ok, retry := in.f.blobBudget.AllowN(origin, int(r.Length), time.Now()); !ok {
		return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: retry,
			Message: "blob read budget of " + origin + " spent"}
	}
	if err := in.holdResponse(ctx, h, int64(r.Length)+blobResponseOverhead); err != nil {
		return nil, err
	}
	return in.f.cfg.Local.ReadBlob(ctx, r.ID, r.Offset, r.Length)
}

// FetchBlob reads length bytes (fewer at the end) from offset off of the
// finished blob id of another domain with fed-blob-get (spec/11-files.md
// section 11.7.1), once. The peer's protocol error passes through; the
// domain policy refuses with domain_refused; a peer that cannot be reached
// within ctx gives unavailable with a retry-after, and so does one whose
// answer does not decode or does not fit the range asked, whose connection
// is then closed with protocol_violation.
func (f *Federation) FetchBlob(ctx context.Context, domain string, id []byte, off, length uint64) (*wire.BlobGetOK, error) {
	if domain == f.cfg.Domain {
		return nil, errors.New("federation: a blob of the local domain")
	}
	if !f.Allowed(domain) {
		return nil, wire.Errorf(wire.CodeDomainRefused, "%s does not federate with %s", f.cfg.Domain, domain)
	}
	p := f.peer(domain)
	var ok wire.BlobGetOK
	err := p.do(ctx, &wire.FedBlobGet{ID: id, Offset: off, Length: length}, &ok)
	if pe, isProto := errors.AsType[*wire.Error](err); isProto && pe.Code == wire.CodeMalformed {
		// An answer that does not decode (or that calls a valid request
		// malformed) is the peer's protocol violation, not an answer.
		err = fmt.Errorf("unusable answer: %v", pe)
		p.closeWith(wire.CloseProtocolViolation, "unusable fed-blob-get answer")
	}
	if err != nil {
		return nil, unavailable(domain, err)
	}
	if err := checkBlobRange(&ok, off, length); err != nil {
		p.closeWith(wire.CloseProtocolViolation, "fed-blob-get answer out of range")
		return nil, &wire.Error{Code: wire.CodeUnavailable, RetryAfter: unreachableRetry,
			Message: fmt.Sprintf("%s answered out of range: %v", domain, err)}
	}
	return &ok, nil
}

// checkBlobRange checks that ok answers a read of length bytes from offset
// off: its size is a padding bucket past off, and it holds length bytes,
// or exactly those up to the end of the blob.
func checkBlobRange(ok *wire.BlobGetOK, off, length uint64) error {
	if wire.PaddedBlobSize(ok.Size) != ok.Size {
		return fmt.Errorf("blob size %d is not a padding bucket", ok.Size)
	}
	if off >= ok.Size {
		return fmt.Errorf("offset %d is not inside the blob of %d bytes", off, ok.Size)
	}
	if want := min(length, ok.Size-off); uint64(len(ok.Data)) != want {
		return fmt.Errorf("%d bytes from offset %d of a blob of %d bytes, want %d", len(ok.Data), off, ok.Size, want)
	}
	return nil
}
