package client

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/xchat-im/xchat/client/internal/profile"

	"github.com/xchat-im/xchat/spec/wire"
)

// SetHooks sets the test hooks that run after a delivery is read (before it
// is stored) and after it is stored (before it is acknowledged).
func SetHooks(c *Client, afterReceive, afterStore func()) {
	c.afterReceive, c.afterStore = afterReceive, afterStore
}

// SetQueueHook sets the test hook that runs after a content item is
// queued in the outbox and before it is sent.
func SetQueueHook(c *Client, afterQueue func()) { c.afterQueue = afterQueue }

// ErrInjected is the error FailEditLookupOnce injects.
var ErrInjected = errors.New("injected profile read failure")

// FailEditLookupOnce makes the next profile read of the message that a
// received edit or delete refers to fail with ErrInjected, once.
func FailEditLookupOnce(c *Client) {
	var done atomic.Bool
	c.readFault = func(read string) error {
		if read == readEditTarget && done.CompareAndSwap(false, true) {
			return ErrInjected
		}
		return nil
	}
}

// SendContent sends one content item to a group.
func SendContent(ctx context.Context, c *Client, group []byte, content *wire.Content) error {
	return c.sendContent(ctx, group, content)
}

// DomainKey looks up the sender-certificate key of a domain as the receive
// path does; skipped reports a lookup not made (the budget was spent).
func DomainKey(ctx context.Context, c *Client, domain string) (key []byte, skipped bool, err error) {
	k, err := c.domainKey(ctx, domain)
	var dk *domainKeyError
	return k, errors.As(err, &dk) && dk.skipped, err
}

// UploadBlob uploads data, whose length must be a padding bucket, as a
// finished blob of c's account, through the wire requests alone, and
// returns its identifier.
func UploadBlob(ctx context.Context, c *Client, data []byte) ([]byte, error) {
	var ok wire.BlobCreateOK
	if err := c.c.do(ctx, &wire.BlobCreate{Size: uint64(len(data))}, &ok); err != nil {
		return nil, err
	}
	for i := range wire.BlobParts(uint64(len(data))) {
		start := i * wire.BlobPartSize
		part := data[start : start+wire.BlobPartLen(uint64(len(data)), i)]
		if err := c.c.do(ctx, &wire.BlobPut{ID: ok.ID, Index: i, Data: part}, &wire.BlobPutOK{}); err != nil {
			return nil, err
		}
	}
	if err := c.c.do(ctx, &wire.BlobFinish{ID: ok.ID}, &wire.BlobFinishOK{}); err != nil {
		return nil, err
	}
	return ok.ID, nil
}

// BlobStatus returns the state of one of c's account's blobs.
func BlobStatus(ctx context.Context, c *Client, id []byte) (*wire.BlobStatusOK, error) {
	var st wire.BlobStatusOK
	err := c.c.do(ctx, &wire.BlobStatus{ID: id}, &st)
	return &st, err
}

// PendingUploadBlob returns the blob of the recorded upload of the file
// at path to the user to, or fails the test.
func PendingUploadBlob(t testing.TB, p *Profile, path, to string) []byte {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var u *profile.Upload
	err = p.view(t.Context(), func(tx *profile.Tx) (err error) {
		u, err = tx.FindUpload(path, fi.Size(), fi.ModTime().UnixNano(), "to:"+to)
		return err
	})
	if err != nil {
		t.Fatalf("no upload of %s recorded: %v", path, err)
	}
	return u.BlobID
}

// CallBaseKeys returns the SFrame base keys a call learned, by epoch.
func CallBaseKeys(c *Call) map[uint64][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint64][]byte, len(c.baseKeys))
	for e, k := range c.baseKeys {
		out[e] = append([]byte(nil), k...)
	}
	return out
}
