package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xchat-im/xchat/spec/wire"
)

// readPayload returns the payload of a single frame.
func readPayload(t testing.TB, frame []byte) []byte {
	t.Helper()
	r := bytes.NewReader(frame)
	p, err := wire.ReadFrame(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes after the frame", r.Len())
	}
	return p
}

func TestErrorResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *wire.Error
	}{
		{"protocol error",
			&wire.Error{Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			&wire.Error{Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}},
		{"no retry-after",
			wire.Errorf(wire.CodeUnknownAccount, "no %s", "bob@b"),
			&wire.Error{Code: wire.CodeUnknownAccount, Message: "no bob@b"}},
		{"empty message",
			&wire.Error{Code: wire.CodeAuthFailed},
			&wire.Error{Code: wire.CodeAuthFailed}},
		{"not a protocol error",
			errors.New("disk on fire"),
			&wire.Error{Code: wire.CodeInternal, Message: "internal error"}},
		{"nil error",
			nil,
			&wire.Error{Code: wire.CodeInternal, Message: "internal error"}},
		{"wrapped protocol error keeps code and retry-after",
			fmt.Errorf("send: %w", &wire.Error{Code: wire.CodeUnavailable, Message: "busy", RetryAfter: 2 * time.Second}),
			&wire.Error{Code: wire.CodeUnavailable, Message: "send: unavailable: busy", RetryAfter: 2 * time.Second}},
		{"code 0 is never sent",
			&wire.Error{Code: wire.CodeOK, Message: "fine"},
			&wire.Error{Code: wire.CodeInternal, Message: "internal error"}},
		{"sub-millisecond retry-after rounds up",
			&wire.Error{Code: wire.CodeRateLimited, RetryAfter: time.Microsecond},
			&wire.Error{Code: wire.CodeRateLimited, RetryAfter: time.Millisecond}},
		{"negative retry-after is dropped",
			&wire.Error{Code: wire.CodeRateLimited, RetryAfter: -time.Second},
			&wire.Error{Code: wire.CodeRateLimited}},
		{"unknown code passes through",
			&wire.Error{Code: 1000, Message: "new"},
			&wire.Error{Code: 1000, Message: "new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := readPayload(t, wire.EncodeError(tt.err))
			if err := wire.CheckDeterministic(p); err != nil {
				t.Fatal(err)
			}
			var ok wire.OK
			err := wire.DecodeResponse(p, &ok)
			var got *wire.Error
			if !errors.As(err, &got) {
				t.Fatalf("DecodeResponse = %v, want a *wire.Error", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
			if !errors.Is(err, sentinel(tt.want.Code)) {
				t.Fatalf("errors.Is(%v, code %d) false", err, tt.want.Code)
			}
		})
	}
}

// Messages are cut to 1024 bytes without splitting a character, and made
// valid UTF-8, so that the error frame always decodes.
func TestErrorMessageLimit(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("x", 2000),
		strings.Repeat("é", 600),                 // 2 bytes each: 1024 falls on a boundary
		"x" + strings.Repeat("é", 600),           // 1024 falls inside a character
		"xx" + strings.Repeat("€", 400),          // 3 bytes each
		"bad \xff\xfe utf-8 \xc0",                // invalid UTF-8
		strings.Repeat("\xff", 2000),             // all invalid
		strings.Repeat("x", 1023) + "\U0001F600", // 4-byte character across the limit
	} {
		p := readPayload(t, wire.EncodeError(&wire.Error{Code: wire.CodeMalformed, Message: msg}))
		err := wire.DecodeResponse(p, &wire.OK{})
		var e *wire.Error
		if !errors.As(err, &e) || e.Code != wire.CodeMalformed {
			t.Fatalf("message %.20q...: %v", msg, err)
		}
		if len(e.Message) > wire.MaxErrorMessage || !utf8.ValidString(e.Message) {
			t.Fatalf("message of %d bytes, valid %v", len(e.Message), utf8.ValidString(e.Message))
		}
		if utf8.ValidString(msg) && !strings.HasPrefix(msg, e.Message) {
			t.Fatalf("message %.20q... is not a prefix", e.Message)
		}
		if utf8.ValidString(msg) && len(msg) > wire.MaxErrorMessage && len(e.Message) < wire.MaxErrorMessage-3 {
			t.Fatalf("message cut to %d bytes", len(e.Message))
		}
	}
}

// encodeSuccess calls EncodeSuccess with v's concrete type.
func encodeSuccess(t testing.TB, v any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch v := v.(type) {
	case *wire.OK:
		b, err = wire.EncodeSuccess(v)
	case *wire.RegisterOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.ServerInfoOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.GetDevicesOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.PublishKeyPackagesOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.ClaimKeyPackageOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.SendOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.SenderCertOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.CreateLinkOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.BlobCreateOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.BlobPutOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.BlobStatusOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.BlobFinishOK:
		b, err = wire.EncodeSuccess(v)
	case *wire.BlobGetOK:
		b, err = wire.EncodeSuccess(v)
	default:
		t.Fatalf("not a success response: %T", v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func successResponses() []any {
	return []any{
		&wire.OK{},
		&wire.RegisterOK{Device: 1},
		&wire.ServerInfoOK{Domain: "example.org", CertKey: repeat(1, 32), Registration: wire.RegistrationInvite,
			Limits: wire.Limits{MaxFrame: wire.MaxFrame, MaxSealed: 66672, MaxEnvelopesPerSend: 256, MaxIDsPerAck: 1024,
				MaxKeyPackages: 1000, MaxKeyPackageLen: 16384, RetentionSeconds: 2592000, MailboxMaxEnvelopes: 10000}},
		&wire.GetDevicesOK{Devices: []wire.DeviceInfo{{ID: 1, Keys: validKeys()}, {ID: 7, Keys: validKeys()}}},
		&wire.GetDevicesOK{Devices: []wire.DeviceInfo{}},
		&wire.PublishKeyPackagesOK{Stored: 100},
		&wire.ClaimKeyPackageOK{KeyPackage: []byte{1, 2}, LastResort: true},
		&wire.SendOK{Results: []wire.Code{wire.CodeOK, wire.CodeTokenInvalid, wire.CodeMailboxFull}},
		&wire.SenderCertOK{Cert: []byte{0xa0}},
		&wire.CreateLinkOK{Token: repeat(0x1c, wire.LinkTokenLen), Expires: 1795000600},
		&wire.ServerInfoOK{Domain: "example.org", CertKey: repeat(1, 32), Registration: wire.RegistrationOpen,
			Limits: wire.Limits{MaxFrame: wire.MaxFrame, MaxSealed: 66672, MaxEnvelopesPerSend: 256, MaxIDsPerAck: 1024,
				MaxKeyPackages: 1000, MaxKeyPackageLen: 16384, RetentionSeconds: 2592000, MailboxMaxEnvelopes: 10000,
				MaxBlobSize: wire.MaxBlobSize, BlobQuota: wire.BlobQuota, BlobRetentionSeconds: wire.BlobRetention,
				UploadLifetimeSeconds: wire.UploadLifetime, MaxUnfinishedUploads: wire.MaxUnfinished}},
		&wire.BlobCreateOK{ID: repeat(0xb1, wire.BlobIDLen), Expires: 1795000600000},
		&wire.BlobPutOK{Received: wire.BlobPartSize},
		&wire.BlobStatusOK{Size: wire.MinBlobSize, Received: wire.MinBlobSize, Complete: true, Expires: 1795000600000},
		&wire.BlobFinishOK{Expires: 1797592600000},
		&wire.BlobGetOK{Data: repeat(0xd1, 100), Size: wire.MinBlobSize},
	}
}

func TestSuccessResponseRoundTrip(t *testing.T) {
	for _, in := range successResponses() {
		t.Run(fmt.Sprintf("%T", in), func(t *testing.T) {
			p := readPayload(t, encodeSuccess(t, in))
			if p[0]&0xe0 != 0xa0 || p[1] != 0x00 || p[2] != 0x00 {
				t.Fatalf("payload %x does not start with key 0 = 0", p)
			}
			out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
			if err := wire.DecodeResponse(p, out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("got %#v\nwant %#v", out, in)
			}
		})
	}
}

func TestDecodeResponseRejects(t *testing.T) {
	enc := func(v any) []byte { return mustMarshal(t, v) }
	tests := []struct {
		name string
		b    []byte
		into any
		want wire.Code
	}{
		{"status 2", enc(m(0, 2)), &wire.OK{}, wire.CodeMalformed},
		{"no status", enc(m(1, 1)), &wire.OK{}, wire.CodeMalformed},
		{"status null", enc(m(0, nil)), &wire.OK{}, wire.CodeMalformed},
		{"not a map", enc([]any{0}), &wire.OK{}, wire.CodeMalformed},
		{"noncanonical", unhex(t, "a1 00 1800"), &wire.OK{}, wire.CodeNoncanonical},
		{"trailing bytes", unhex(t, "a1 00 00 00"), &wire.OK{}, wire.CodeMalformed},
		{"error code 0", enc(m(0, 1, 1, 0, 2, "")), &wire.OK{}, wire.CodeMalformed},
		{"error without code", enc(m(0, 1, 2, "x")), &wire.OK{}, wire.CodeMalformed},
		{"error without message", enc(m(0, 1, 1, 5)), &wire.OK{}, wire.CodeMalformed},
		{"error message 1025 bytes", enc(m(0, 1, 1, 5, 2, strings.Repeat("x", 1025))), &wire.OK{}, wire.CodeMalformed},
		{"error message bstr", enc(m(0, 1, 1, 5, 2, []byte("x"))), &wire.OK{}, wire.CodeMalformed},
		{"error retry-after null", enc(m(0, 1, 1, 5, 2, "", 3, nil)), &wire.OK{}, wire.CodeMalformed},
		{"error retry-after negative", enc(m(0, 1, 1, 5, 2, "", 3, -1)), &wire.OK{}, wire.CodeMalformed},
		{"success missing key", enc(m(0, 0)), &wire.RegisterOK{}, wire.CodeMalformed},
		{"success wrong type", enc(m(0, 0, 1, "one")), &wire.RegisterOK{}, wire.CodeMalformed},
		{"success null field", enc(m(0, 0, 1, nil)), &wire.SendOK{}, wire.CodeMalformed},
		{"success null result", enc(m(0, 0, 1, []any{0, nil})), &wire.SendOK{}, wire.CodeMalformed},
		{"success null limits", enc(m(0, 0, 1, "d", 2, []byte{}, 3, 0, 4, nil)), &wire.ServerInfoOK{}, wire.CodeMalformed},
		{"success limits missing key 8", enc(m(0, 0, 1, "d", 2, []byte{}, 3, 0, 4, m(1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0))), &wire.ServerInfoOK{}, wire.CodeMalformed},
		{"success into nil", enc(m(0, 0)), nil, wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, wire.DecodeResponse(tt.b, tt.into), tt.want)
		})
	}
}

func TestDecodeResponseAccepts(t *testing.T) {
	enc := func(v any) []byte { return mustMarshal(t, v) }
	// Unknown keys are ignored in both kinds of response.
	var r wire.RegisterOK
	if err := wire.DecodeResponse(enc(m(0, 0, 1, 9, 2, "new", 3, nil)), &r); err != nil || r.Device != 9 {
		t.Fatalf("success with unknown keys: %+v, %v", r, err)
	}
	err := wire.DecodeResponse(enc(m(0, 1, 1, 16, 2, "m", 3, 250, 4, "new")), &r)
	var e *wire.Error
	if !errors.As(err, &e) || e.Code != wire.CodeRateLimited || e.RetryAfter != 250*time.Millisecond || e.Message != "m" {
		t.Fatalf("error with unknown keys: %#v", err)
	}
	// A message of exactly 1024 bytes is accepted.
	err = wire.DecodeResponse(enc(m(0, 1, 1, 5, 2, strings.Repeat("x", 1024))), &r)
	if !errors.As(err, &e) || len(e.Message) != 1024 {
		t.Fatalf("1024-byte message: %v", err)
	}
	// A huge retry-after saturates rather than overflowing to a negative
	// duration.
	err = wire.DecodeResponse(enc(m(0, 1, 1, 23, 2, "", 3, uint64(math.MaxUint64))), &r)
	if !errors.As(err, &e) || e.RetryAfter != math.MaxInt64 {
		t.Fatalf("huge retry-after: %#v", err)
	}
}

func TestCodeNames(t *testing.T) {
	want := map[wire.Code]string{
		0: "ok", 1: "malformed", 2: "frame_too_large", 3: "noncanonical", 4: "unknown_request",
		6: "invalid_address", 16: "rate_limited", 19: "bad_padding", 24: "already_authenticated", 25: "domain_refused", 26: "peer_unauthenticated", 27: "expired", 28: "link_invalid", 29: "last_device", 30: "outbound_full",
		31: "quota_exceeded", 32: "unknown_blob", 33: "bad_range", 34: "blob_incomplete", 35: "room_denied", 36: "call_full", 37: "code_37",
	}
	for c, name := range want {
		if c.String() != name {
			t.Errorf("Code(%d) = %q, want %q", c, c.String(), name)
		}
	}
	if got := wire.Errorf(wire.CodeMalformed, "x %d", 1).Error(); got != "malformed: x 1" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&wire.Error{Code: wire.CodeInternal}).Error(); got != "internal" {
		t.Errorf("Error() = %q", got)
	}
	if wire.CodeOf(errors.New("x")) != wire.CodeInternal || wire.CodeOf(fmt.Errorf("a: %w", wire.ErrAuthFailed)) != wire.CodeAuthFailed {
		t.Error("CodeOf")
	}
	if errors.Is(wire.ErrAuthFailed, wire.ErrMalformed) || !errors.Is(wire.Errorf(wire.CodeAuthFailed, "x"), wire.ErrAuthFailed) {
		t.Error("Is")
	}
}
