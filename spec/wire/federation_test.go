package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func fedRequests() map[string]wire.Request {
	return map[string]wire.Request{
		"fed-hello":         &wire.FedHello{Domain: "a.example"},
		"relay":             &wire.Relay{Envelopes: []wire.Envelope{validEnvelope(1), validEnvelope(2)}},
		"server-info":       &wire.ServerInfo{},
		"get-devices":       &wire.GetDevices{Address: "bob@example.org"},
		"claim-key-package": &wire.ClaimKeyPackage{Address: "bob@example.org", Device: 3},
		"fed-blob-get":      &wire.FedBlobGet{ID: repeat(0xb5, wire.BlobIDLen), Offset: 5, Length: wire.BlobPartSize},
	}
}

func TestFedRequestsRoundTrip(t *testing.T) {
	for name, r := range fedRequests() {
		t.Run(name, func(t *testing.T) {
			p := readPayload(t, must(wire.EncodeRequest(r)))
			got, err := wire.DecodeFedRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("got %#v, want %#v", got, r)
			}
		})
	}
}

func envelopes(n int) []wire.Envelope {
	envs := make([]wire.Envelope, n)
	for i := range envs {
		envs[i] = validEnvelope(byte(i))
	}
	return envs
}

func TestFedRequestsRefused(t *testing.T) {
	tests := []struct {
		name string
		req  wire.Request
		code wire.Code
	}{
		{"client request on a federation connection", &wire.Send{Envelopes: []wire.Envelope{validEnvelope(1)}}, wire.CodeUnknownRequest},
		{"register on a federation connection", &wire.Authenticate{Address: "a@example.org", Device: 1, Signature: repeat(1, 64)}, wire.CodeUnknownRequest},
		{"hello with an invalid domain", &wire.FedHello{Domain: "A.example"}, wire.CodeInvalidAddress},
		{"empty relay", &wire.Relay{}, wire.CodeLimitExceeded},
		{"relay over the limit", &wire.Relay{Envelopes: envelopes(wire.MaxEnvelopesPerSend + 1)}, wire.CodeLimitExceeded},
		{"blob-get on a federation connection", &wire.BlobGet{Domain: "a.example", ID: repeat(1, 16), Length: 1}, wire.CodeUnknownRequest},
		{"fed-blob-get length 0", &wire.FedBlobGet{ID: repeat(1, 16)}, wire.CodeMalformed},
		{"fed-blob-get length over a part", &wire.FedBlobGet{ID: repeat(1, 16), Length: wire.BlobPartSize + 1}, wire.CodeMalformed},
		{"fed-blob-get id 15 bytes", &wire.FedBlobGet{ID: repeat(1, 15), Length: 1}, wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := wire.EncodeRequest(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = wire.DecodeFedRequest(readPayload(t, frame))
			var pe *wire.Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
}

func FuzzDecodeFedRequest(f *testing.F) {
	for _, r := range fedRequests() {
		addSmall(f, readPayload(f, must(wire.EncodeRequest(r))))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := wire.DecodeFedRequest(b)
		if err != nil {
			if r != nil {
				t.Fatalf("request and error %v", err)
			}
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical, wire.CodeUnknownRequest,
				wire.CodeInvalidAddress, wire.CodeLimitExceeded)
			return
		}
		p := readPayload(t, must(wire.EncodeRequest(r)))
		r2, err := wire.DecodeFedRequest(p)
		if err != nil {
			t.Fatalf("re-encoded %x: %v", p, err)
		}
		if !bytes.Equal(readPayload(t, must(wire.EncodeRequest(r2))), p) {
			t.Fatal("request changed on the second round trip")
		}
	})
}

func FuzzDecodeNotice(f *testing.F) {
	f.Add(must(wire.Marshal(&wire.Notice{ID: repeat(1, 16), To: wire.Mailbox{Address: "bob@example.org", Device: 1}, Code: wire.CodeExpired})))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var n wire.Notice
		if err := wire.Unmarshal(b, &n); err != nil {
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical)
		}
	})
}
