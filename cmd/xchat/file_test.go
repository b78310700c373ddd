package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/spec/wire"
)

// The reason a corrupt file gives is filecrypt's, without the sentinels'
// texts around it.
func TestCorruptReason(t *testing.T) {
	t.Parallel()
	chunk := fmt.Errorf("%w: chunk 2 of 5 does not authenticate (altered, reordered or truncated)", filecrypt.ErrCorrupt)
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: small.bin: %w", client.ErrFileCorrupt, chunk), "chunk 2 of 5 does not authenticate (altered, reordered or truncated)"},
		{fmt.Errorf("%w: x: %w", client.ErrFileCorrupt, filecrypt.ErrHashMismatch), "blob hash does not match the file reference"},
		{errors.New("something else"), "something else"},
	} {
		if got := corruptReason(c.err); got != c.want {
			t.Errorf("corruptReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestListLine(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 12, 7, 23, 40, 1, 0, time.Local)
	f := client.File{ID: "00112233445566778899aabbccddeeff", Ref: wire.FileRef{Name: "a.png", Size: 1536}, From: "alice@a.test",
		Direct: true, ReceivedAt: when}
	for _, c := range []struct {
		change func(*client.File)
		conv   string
		want   string
	}{
		{func(*client.File) {}, "alice@a.test", "direct with alice@a.test): a.png (1.5 KiB) not downloaded"},
		{func(f *client.File) { f.Path = "/tmp/a.png" }, "alice@a.test", "direct with alice@a.test): a.png (1.5 KiB) saved as /tmp/a.png"},
		{func(f *client.File) { f.Partial = 1024 }, "alice@a.test", "direct with alice@a.test): a.png (1.5 KiB) 1.0 KiB downloaded"},
		{func(f *client.File) { f.Direct, f.Outgoing = false, true }, "trio", `in "trio"): a.png (1.5 KiB) sent`},
	} {
		g := f
		c.change(&g)
		want := "00112233445566778899aabbccddeeff 2026-12-07 23:40:01 alice@a.test (" + c.want
		if got := listLine(&g, c.conv); got != want {
			t.Errorf("listLine:\n got %q\nwant %q", got, want)
		}
	}
}

func TestShownName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"photo.jpg":             "photo.jpg",
		"Résumé 2026.pdf":       "Résumé 2026.pdf",
		"invoice\u202egpj.exe":  `invoice\u202egpj.exe`,
		"a\u200bb\u2028c\u0085": `a\u200bb\u2028c\u0085`,
		"bad\xffutf8":           `bad\ufffdutf8`,
	} {
		if got := shownName(name); got != want {
			t.Errorf("shownName(%q) = %q, want %q", name, got, want)
		}
	}
}
