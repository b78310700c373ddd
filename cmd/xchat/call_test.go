package main

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/spec/wire"
)

// A WAV file in another format is refused before the call with what it
// is and how to convert it.
func TestCallAudioFormat(t *testing.T) {
	t.Parallel()
	var b []byte
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, 36+4)
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)       // PCM
	b = binary.LittleEndian.AppendUint16(b, 2)       // stereo
	b = binary.LittleEndian.AppendUint32(b, 44100)   // rate
	b = binary.LittleEndian.AppendUint32(b, 44100*4) // bytes/s
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, 4)
	b = append(b, 0, 0, 0, 0)
	path := filepath.Join(t.TempDir(), "cd.wav")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f := callFlags{audio: path, codec: "pcmu"}
	err := f.check()
	if err == nil || !strings.Contains(err.Error(), "is 44100 Hz, 2 channels, 16-bit (format 1): want 48 kHz mono 16-bit PCM (ffmpeg") {
		t.Fatalf("check of a stereo 44.1 kHz file: %v", err)
	}
}

// What recv shows of call messages stored by another command: an invite
// rings until the ring timeout, unless a hang-up or decline followed
// (missed) or another device of the account accepted it; one this device
// answered is not shown.
func TestStoredCall(t *testing.T) {
	t.Parallel()
	now := time.Now()
	self := wire.Mailbox{Address: "bob@b.test", Device: 1}
	id := []byte("0123456789abcdef")
	invite := client.Message{From: "alice@a.test", FromDevice: 1, Direct: true, SentAt: now.Add(-5 * time.Second),
		Call: &wire.CallSignal{CallID: id, Kind: wire.SignalInvite, Media: wire.MediaAudio}}
	sig := func(from string, dev uint32, kind uint64) client.Message {
		return client.Message{From: from, FromDevice: dev, SentAt: now, Call: &wire.CallSignal{CallID: id, Kind: kind}}
	}
	old := invite
	old.SentAt = now.Add(-2 * time.Minute)
	for _, c := range []struct {
		name  string
		msgs  []client.Message
		shown bool
		kind  client.CallUpdateKind
	}{
		{"ringing", []client.Message{invite}, true, client.CallRinging},
		{"too old", []client.Message{old}, true, client.CallMissed},
		{"hung up", []client.Message{invite, sig("alice@a.test", 1, wire.SignalHangup)}, true, client.CallMissed},
		{"accepted elsewhere", []client.Message{invite, sig("bob@b.test", 2, wire.SignalAccept)}, true, client.CallAnsweredElsewhere},
		{"answered here", []client.Message{invite, sig("bob@b.test", 1, wire.SignalAccept)}, false, 0},
		{"not an invite", []client.Message{sig("alice@a.test", 1, wire.SignalHangup)}, false, 0},
	} {
		u, ok := storedCall(c.msgs, 0, self, now)
		if ok != c.shown || (ok && u.Kind != c.kind) {
			t.Errorf("%s: shown %v as %v, want %v as %v", c.name, ok, u.Kind, c.shown, c.kind)
		}
	}
	if in := ringingStored([]client.Message{invite}, self, now); in == nil || string(in.ID) != string(id) {
		t.Errorf("ringingStored = %+v", in)
	}
	if in := ringingStored([]client.Message{invite, sig("alice@a.test", 1, wire.SignalHangup)}, self, now); in != nil {
		t.Errorf("ringingStored of a hung-up call = %+v", in)
	}
}

// A call that fails leaves an existing --record file as it was and no
// partial file beside it.
func TestCallFailedKeepsRecordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := filepath.Join(dir, "old.wav")
	if err := os.WriteFile(rec, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &app{profile: filepath.Join(dir, "no-profile"), stdout: io.Discard, stderr: io.Discard}
	f := &callFlags{record: rec, codec: "pcmu"}
	err := a.runCall(context.Background(), f, false, nil, nil)
	if err == nil {
		t.Fatal("a call without a profile succeeded")
	}
	if b, _ := os.ReadFile(rec); string(b) != "precious" {
		t.Fatalf("the existing recording became %q after a failed call (%v)", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left: %v", ents)
	}
}
