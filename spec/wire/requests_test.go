package wire_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func validKeys() wire.DeviceKeys {
	return wire.DeviceKeys{SigKey: repeat(0x11, 32), KEM: wire.KEMXWing, HPKEKey: repeat(0x22, wire.XWingPublicKeyLen)}
}

func validEnvelope(i byte) wire.Envelope {
	return wire.Envelope{
		ID:     repeat(i, 16),
		To:     wire.Mailbox{Address: "bob@example.org", Device: 1 + uint32(i)},
		Sealed: repeat(0x5e, wire.XWingEncLen+wire.MinBucket+wire.AEADTagLen),
	}
}

// validRequests holds one valid request of each type, several for some.
// It also seeds FuzzDecodeRequest and the request vectors.
func validRequests() map[string]wire.Request {
	withToken := validEnvelope(2)
	withToken.Token = repeat(0x70, 32)
	many := make([]wire.Envelope, wire.MaxEnvelopesPerSend)
	for i := range many {
		many[i] = validEnvelope(byte(i))
		many[i].Sealed = []byte{byte(i)}
	}
	ids := make([][]byte, wire.MaxIDsPerAck)
	for i := range ids {
		ids[i] = repeat(byte(i), 16)
	}
	verifiers := make([][]byte, wire.MaxVerifiers)
	for i := range verifiers {
		verifiers[i] = repeat(byte(i), 32)
	}
	kps := make([][]byte, wire.MaxKeyPackagesPerPub)
	for i := range kps {
		kps[i] = []byte{byte(i)}
	}
	return map[string]wire.Request{
		"register":                   &wire.Register{Address: "alice@example.org", Keys: validKeys(), Signature: repeat(0x51, 64)},
		"register-invite":            &wire.Register{Address: "alice@example.org", Keys: validKeys(), Invite: repeat(0x1e, 64), Signature: repeat(0x51, 64)},
		"authenticate":               &wire.Authenticate{Address: "alice@example.org", Device: 1, Signature: repeat(0x51, 64)},
		"authenticate-max-device":    &wire.Authenticate{Address: "alice@example.org", Device: 1<<32 - 1, Signature: repeat(0x51, 64)},
		"server-info":                &wire.ServerInfo{},
		"get-devices":                &wire.GetDevices{Address: "bob@example.org"},
		"publish-key-packages":       &wire.PublishKeyPackages{OneTime: [][]byte{repeat(0x4b, 300), {1}}, LastResort: repeat(0x4c, wire.MaxKeyPackageLen)},
		"publish-key-packages-empty": &wire.PublishKeyPackages{},
		"publish-key-packages-100":   &wire.PublishKeyPackages{OneTime: kps},
		"claim-key-package":          &wire.ClaimKeyPackage{Address: "bob@example.org", Device: 3},
		"send":                       &wire.Send{Envelopes: []wire.Envelope{validEnvelope(1), withToken}},
		"send-256":                   &wire.Send{Envelopes: many},
		"ack":                        &wire.Ack{IDs: [][]byte{repeat(0x01, 16), repeat(0x02, 16)}},
		"ack-1024":                   &wire.Ack{IDs: ids},
		"set-delivery-policy":        &wire.SetDeliveryPolicy{Verifiers: [][]byte{repeat(0x76, 32)}, RequestLaneOpen: true},
		"set-delivery-policy-empty":  &wire.SetDeliveryPolicy{Verifiers: [][]byte{}},
		"set-delivery-policy-64":     &wire.SetDeliveryPolicy{Verifiers: verifiers},
		"get-sender-cert":            &wire.GetSenderCert{},
		"get-domain-key":             &wire.GetDomainKey{Domain: "example.org"},
		"create-link":                &wire.CreateLink{},
		"register-link":              &wire.Register{Address: "alice@example.org", Keys: validKeys(), Signature: repeat(0x51, 64), Link: repeat(0x1c, wire.LinkTokenLen)},
		"remove-device":              &wire.RemoveDevice{Device: 2},
		"remove-device-max":          &wire.RemoveDevice{Device: 1<<32 - 1},
		"blob-create":                &wire.BlobCreate{Size: wire.MinBlobSize},
		"blob-create-large":          &wire.BlobCreate{Size: 5319713863},
		"blob-put":                   &wire.BlobPut{ID: repeat(0xb1, wire.BlobIDLen), Index: 3, Data: repeat(0xd1, 100)},
		"blob-put-full":              &wire.BlobPut{ID: repeat(0xb1, wire.BlobIDLen), Index: 0, Data: repeat(0xd2, wire.BlobPartSize)},
		"blob-status":                &wire.BlobStatus{ID: repeat(0xb2, wire.BlobIDLen)},
		"blob-finish":                &wire.BlobFinish{ID: repeat(0xb3, wire.BlobIDLen)},
		"blob-get":                   &wire.BlobGet{Domain: "b.example", ID: repeat(0xb4, wire.BlobIDLen), Offset: 1 << 33, Length: wire.BlobPartSize},
		"blob-get-1":                 &wire.BlobGet{Domain: "example.org", ID: repeat(0xb4, wire.BlobIDLen), Length: 1},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for name, req := range validRequests() {
		t.Run(name, func(t *testing.T) {
			frame, err := wire.EncodeRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := wire.ReadFrame(bytes.NewReader(frame), wire.MaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			if err := wire.CheckDeterministic(payload); err != nil {
				t.Fatalf("encoder output not deterministic: %v", err)
			}
			got, err := wire.DecodeRequest(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, req) {
				t.Fatalf("decoded %#v\nwant    %#v", got, req)
			}
			if typ := wire.RequestType(got); payload[1] != 0x00 || uint64(payload[2]) != typ && typ < 24 {
				t.Fatalf("key 0 of %x is not type %d", payload[:3], typ)
			}
		})
	}
}

func TestRequestTypes(t *testing.T) {
	want := map[string]uint64{
		"register": 1, "authenticate": 2, "server-info": 3, "get-devices": 4, "publish-key-packages": 5,
		"claim-key-package": 6, "send": 7, "ack": 8, "set-delivery-policy": 9, "get-sender-cert": 10,
		"get-domain-key": 11, "create-link": 12, "remove-device": 13, "register-link": 1,
		"blob-create": 14, "blob-put": 15, "blob-status": 16, "blob-finish": 17, "blob-get": 18,
	}
	reqs := validRequests()
	for name, typ := range want {
		if got := wire.RequestType(reqs[name]); got != typ {
			t.Errorf("%s: type %d, want %d", name, got, typ)
		}
	}
}

// badRequest is a request that decodes but fails Validate.
type badRequest struct {
	name string
	req  wire.Request
	want wire.Code
}

func badRequests() []badRequest {
	keys := func(f func(*wire.DeviceKeys)) wire.DeviceKeys { k := validKeys(); f(&k); return k }
	env := func(f func(*wire.Envelope)) []wire.Envelope { e := validEnvelope(1); f(&e); return []wire.Envelope{e} }
	sig := repeat(0x51, 64)
	tooMany := func(n, size int) [][]byte {
		s := make([][]byte, n)
		for i := range s {
			s[i] = repeat(byte(i), size)
		}
		return s
	}
	envs := func(n int) []wire.Envelope {
		s := make([]wire.Envelope, n)
		for i := range s {
			s[i] = validEnvelope(byte(i))
			s[i].Sealed = []byte{1}
		}
		return s
	}
	return []badRequest{
		{"register bad address", &wire.Register{Address: "Alice@example.org", Keys: validKeys(), Signature: sig}, wire.CodeInvalidAddress},
		{"register long address", &wire.Register{Address: local64 + "l@x", Keys: validKeys(), Signature: sig}, wire.CodeInvalidAddress},
		{"register sig key 31 bytes", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.SigKey = k.SigKey[:31] }), Signature: sig}, wire.CodeMalformed},
		{"register KEM DHKEM(X25519)", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.KEM = 0x0020 }), Signature: sig}, wire.CodeMalformed},
		{"register KEM 0", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.KEM = 0 }), Signature: sig}, wire.CodeMalformed},
		{"register X-Wing key 1215 bytes", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.HPKEKey = k.HPKEKey[:1215] }), Signature: sig}, wire.CodeMalformed},
		{"register HPKE key empty", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.HPKEKey = []byte{} }), Signature: sig}, wire.CodeMalformed},
		{"register HPKE key 2049 bytes", &wire.Register{Address: "a@b", Keys: keys(func(k *wire.DeviceKeys) { k.HPKEKey = repeat(1, 2049) }), Signature: sig}, wire.CodeMalformed},
		{"register invite 65 bytes", &wire.Register{Address: "a@b", Keys: validKeys(), Invite: repeat(1, 65), Signature: sig}, wire.CodeMalformed},
		{"register signature 63 bytes", &wire.Register{Address: "a@b", Keys: validKeys(), Signature: sig[:63]}, wire.CodeMalformed},
		{"register signature empty", &wire.Register{Address: "a@b", Keys: validKeys()}, wire.CodeMalformed},
		// CDDL before address, address before the KEM (spec 3.3.1 step 4).
		{"register bad address and signature", &wire.Register{Address: "A@b", Keys: validKeys(), Signature: sig[:1]}, wire.CodeMalformed},
		{"register bad address and sig key", &wire.Register{Address: "A@b", Keys: keys(func(k *wire.DeviceKeys) { k.SigKey = nil }), Signature: sig}, wire.CodeMalformed},
		{"register bad address and KEM", &wire.Register{Address: "A@b", Keys: keys(func(k *wire.DeviceKeys) { k.KEM = 0x20 }), Signature: sig}, wire.CodeInvalidAddress},
		{"register link 15 bytes", &wire.Register{Address: "a@b", Keys: validKeys(), Link: repeat(1, 15), Signature: sig}, wire.CodeMalformed},
		{"register link 17 bytes", &wire.Register{Address: "a@b", Keys: validKeys(), Link: repeat(1, 17), Signature: sig}, wire.CodeMalformed},
		{"register invite and link", &wire.Register{Address: "a@b", Keys: validKeys(), Invite: []byte{1}, Link: repeat(1, 16), Signature: sig}, wire.CodeMalformed},
		{"register invite and link, bad address", &wire.Register{Address: "A@b", Keys: validKeys(), Invite: []byte{1}, Link: repeat(1, 16), Signature: sig}, wire.CodeMalformed},
		{"remove-device device 0", &wire.RemoveDevice{}, wire.CodeMalformed},
		// Files (spec 11.6, 11.7): sizes and lengths are CDDL bounds.
		{"blob-create size 0", &wire.BlobCreate{}, wire.CodeMalformed},
		{"blob-put id 15 bytes", &wire.BlobPut{ID: repeat(1, 15), Data: []byte{1}}, wire.CodeMalformed},
		{"blob-put id 17 bytes", &wire.BlobPut{ID: repeat(1, 17), Data: []byte{1}}, wire.CodeMalformed},
		{"blob-put no data", &wire.BlobPut{ID: repeat(1, 16), Data: []byte{}}, wire.CodeMalformed},
		{"blob-put data over a part", &wire.BlobPut{ID: repeat(1, 16), Data: repeat(1, wire.BlobPartSize+1)}, wire.CodeMalformed},
		{"blob-status id empty", &wire.BlobStatus{ID: []byte{}}, wire.CodeMalformed},
		{"blob-finish id 15 bytes", &wire.BlobFinish{ID: repeat(1, 15)}, wire.CodeMalformed},
		{"blob-get length 0", &wire.BlobGet{Domain: "b.example", ID: repeat(1, 16)}, wire.CodeMalformed},
		{"blob-get length over a part", &wire.BlobGet{Domain: "b.example", ID: repeat(1, 16), Length: wire.BlobPartSize + 1}, wire.CodeMalformed},
		{"blob-get bad domain", &wire.BlobGet{Domain: "B.example", ID: repeat(1, 16), Length: 1}, wire.CodeInvalidAddress},
		{"blob-get domain with a port", &wire.BlobGet{Domain: "b.example:7443", ID: repeat(1, 16), Length: 1}, wire.CodeInvalidAddress},
		// CDDL before the domain name (spec 3.3.1 step 4).
		{"blob-get bad domain and id", &wire.BlobGet{Domain: "B.example", ID: repeat(1, 15), Length: 1}, wire.CodeMalformed},
		{"blob-get bad domain and length", &wire.BlobGet{Domain: "B.example", ID: repeat(1, 16)}, wire.CodeMalformed},
		{"authenticate device 0", &wire.Authenticate{Address: "a@b", Device: 0, Signature: sig}, wire.CodeMalformed},
		{"authenticate signature 65 bytes", &wire.Authenticate{Address: "a@b", Device: 1, Signature: repeat(1, 65)}, wire.CodeMalformed},
		{"authenticate bad address", &wire.Authenticate{Address: "a@b.", Device: 1, Signature: sig}, wire.CodeInvalidAddress},
		{"authenticate bad address and device 0", &wire.Authenticate{Address: "a@b.", Device: 0, Signature: sig}, wire.CodeMalformed},
		{"get-devices bad address", &wire.GetDevices{Address: "bob"}, wire.CodeInvalidAddress},
		{"get-devices empty address", &wire.GetDevices{}, wire.CodeInvalidAddress},
		{"publish 101 packages", &wire.PublishKeyPackages{OneTime: tooMany(101, 1)}, wire.CodeLimitExceeded},
		{"publish empty package", &wire.PublishKeyPackages{OneTime: [][]byte{{1}, {}}}, wire.CodeMalformed},
		{"publish package 16385 bytes", &wire.PublishKeyPackages{OneTime: [][]byte{repeat(1, wire.MaxKeyPackageLen+1)}}, wire.CodeMalformed},
		{"publish last resort 16385 bytes", &wire.PublishKeyPackages{LastResort: repeat(1, wire.MaxKeyPackageLen+1)}, wire.CodeMalformed},
		{"publish 101 packages, one empty", &wire.PublishKeyPackages{OneTime: append(tooMany(100, 1), []byte{})}, wire.CodeMalformed},
		{"claim device 0", &wire.ClaimKeyPackage{Address: "a@b"}, wire.CodeMalformed},
		{"claim bad address", &wire.ClaimKeyPackage{Address: "a@B", Device: 1}, wire.CodeInvalidAddress},
		{"send no envelopes", &wire.Send{}, wire.CodeLimitExceeded},
		{"send 257 envelopes", &wire.Send{Envelopes: envs(257)}, wire.CodeLimitExceeded},
		{"send id 15 bytes", &wire.Send{Envelopes: env(func(e *wire.Envelope) { e.ID = e.ID[:15] })}, wire.CodeMalformed},
		{"send id 17 bytes", &wire.Send{Envelopes: env(func(e *wire.Envelope) { e.ID = repeat(1, 17) })}, wire.CodeMalformed},
		{"send token 31 bytes", &wire.Send{Envelopes: env(func(e *wire.Envelope) { e.Token = repeat(1, 31) })}, wire.CodeMalformed},
		{"send device 0", &wire.Send{Envelopes: env(func(e *wire.Envelope) { e.To.Device = 0 })}, wire.CodeMalformed},
		{"send bad address", &wire.Send{Envelopes: env(func(e *wire.Envelope) { e.To.Address = "Bob@example.org" })}, wire.CodeInvalidAddress},
		{"send bad address, then bad id", &wire.Send{Envelopes: append(env(func(e *wire.Envelope) { e.To.Address = "x" }), env(func(e *wire.Envelope) { e.ID = nil })...)}, wire.CodeMalformed},
		{"send 257 envelopes, one malformed", &wire.Send{Envelopes: append(envs(256), env(func(e *wire.Envelope) { e.ID = nil })...)}, wire.CodeMalformed},
		{"send 257 envelopes, one bad address", &wire.Send{Envelopes: append(envs(256), env(func(e *wire.Envelope) { e.To.Address = "x" })...)}, wire.CodeInvalidAddress},
		{"ack no ids", &wire.Ack{}, wire.CodeLimitExceeded},
		{"ack id 17 bytes", &wire.Ack{IDs: [][]byte{repeat(1, 17)}}, wire.CodeMalformed},
		{"policy 65 verifiers", &wire.SetDeliveryPolicy{Verifiers: tooMany(65, 32)}, wire.CodeLimitExceeded},
		{"policy verifier 31 bytes", &wire.SetDeliveryPolicy{Verifiers: [][]byte{repeat(1, 31)}}, wire.CodeMalformed},
		{"policy 65 verifiers, one 33 bytes", &wire.SetDeliveryPolicy{Verifiers: append(tooMany(64, 32), repeat(1, 33))}, wire.CodeMalformed},
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tt := range badRequests() {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.req.Validate(), tt.want)
			frame, err := wire.EncodeRequest(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := wire.ReadFrame(bytes.NewReader(frame), 0)
			if err != nil {
				t.Fatal(err)
			}
			r, err := wire.DecodeRequest(payload)
			if r != nil {
				t.Errorf("DecodeRequest returned %T with the error", r)
			}
			wantCode(t, err, tt.want)
		})
	}
}

// An ack of 1025 ids breaks the CBOR array limit, which DecodeRequest
// checks before Validate's count (spec 1.8).
func TestAckOverArrayLimit(t *testing.T) {
	ids := make([][]byte, wire.MaxArray+1)
	for i := range ids {
		ids[i] = repeat(byte(i), 16)
	}
	r := &wire.Ack{IDs: ids}
	wantCode(t, r.Validate(), wire.CodeLimitExceeded)
	frame, err := wire.EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := wire.ReadFrame(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wire.DecodeRequest(payload)
	wantCode(t, err, wire.CodeMalformed)
	wantCode(t, wire.CheckDeterministic(payload), wire.CodeMalformed)
}

// rawRequest is a hand-built payload for DecodeRequest.
type rawRequest struct {
	name string
	b    []byte
	want wire.Code
}

// m builds a map payload with uint keys; nil values encode as null.
func m(kv ...any) map[uint64]any {
	r := make(map[uint64]any)
	for i := 0; i < len(kv); i += 2 {
		r[uint64(kv[i].(int))] = kv[i+1]
	}
	return r
}

func rawRequests(t testing.TB) []rawRequest {
	sig := repeat(0x51, 64)
	keys := m(1, repeat(0x11, 32), 2, wire.KEMXWing, 3, repeat(0x22, wire.XWingPublicKeyLen))
	mbox := m(1, "bob@example.org", 2, 1)
	envelope := func(kv ...any) map[uint64]any {
		e := m(1, repeat(1, 16), 2, mbox, 4, repeat(2, 1392))
		for k, v := range m(kv...) {
			if v == "DELETE" {
				delete(e, k)
			} else {
				e[k] = v
			}
		}
		return e
	}
	enc := func(v any) []byte { return mustMarshal(t, v) }
	return []rawRequest{
		{"unknown type 21", enc(m(0, 21)), wire.CodeUnknownRequest},
		{"unknown type 31 (last reserved)", enc(m(0, 31)), wire.CodeUnknownRequest},
		{"federation type 66 on xchat/1", enc(m(0, 66, 1, repeat(1, 16), 2, 0, 3, 1)), wire.CodeUnknownRequest},
		{"unknown type 32 (push)", enc(m(0, 32)), wire.CodeUnknownRequest},
		{"unknown type 0 (response status)", enc(m(0, 0)), wire.CodeUnknownRequest},
		{"unknown type 2^64-1", unhex(t, "a1 00 1bffffffffffffffff"), wire.CodeUnknownRequest},
		{"unknown type with unknown fields", enc(m(0, 1000, 1, "x", 2, []any{nil})), wire.CodeUnknownRequest},
		{"no key 0", enc(m(1, "a@b")), wire.CodeMalformed},
		{"empty map", unhex(t, "a0"), wire.CodeMalformed},
		{"key 0 null", enc(m(0, nil)), wire.CodeMalformed},
		{"key 0 text", enc(m(0, "3")), wire.CodeMalformed},
		{"key 0 negative", enc(m(0, -3)), wire.CodeMalformed},
		{"key 0 false", enc(m(0, false)), wire.CodeMalformed},
		{"text key \"0\"", enc(map[string]any{"0": 3}), wire.CodeMalformed},
		{"not a map: array", enc([]any{3}), wire.CodeMalformed},
		{"not a map: uint", unhex(t, "03"), wire.CodeMalformed},
		{"not a map: null", unhex(t, "f6"), wire.CodeMalformed},
		{"noncanonical before unknown type", unhex(t, "a1 00 1803"), wire.CodeNoncanonical},
		{"unsorted before unknown type", unhex(t, "a2 01 00 00 18 63"), wire.CodeNoncanonical},
		// Valid with unknown keys, which are ignored even when null.
		{"server-info with unknown keys", enc(m(0, 3, 1, nil, 99, []any{"x", m(1, nil)})), wire.CodeOK},
		{"get-devices with unknown key", enc(m(0, 4, 1, "bob@example.org", 2, "ignored")), wire.CodeOK},
		{"get-devices with text key", enc(map[any]any{uint64(0): 4, uint64(1): "bob@example.org", "1": "Invalid@x"}), wire.CodeOK},
		// Missing required keys (spec 1.8).
		{"register without signature", enc(m(0, 1, 1, "a@b", 2, keys)), wire.CodeMalformed},
		{"register without keys", enc(m(0, 1, 1, "a@b", 4, sig)), wire.CodeMalformed},
		{"register without address", enc(m(0, 1, 2, keys, 4, sig)), wire.CodeMalformed},
		{"register keys without KEM", enc(m(0, 1, 1, "a@b", 2, m(1, repeat(0x11, 32), 3, repeat(0x22, 1216)), 4, sig)), wire.CodeMalformed},
		{"authenticate without device", enc(m(0, 2, 1, "a@b", 3, sig)), wire.CodeMalformed},
		{"get-devices without address", enc(m(0, 4)), wire.CodeMalformed},
		{"claim without device", enc(m(0, 6, 1, "a@b")), wire.CodeMalformed},
		{"send without envelopes", enc(m(0, 7)), wire.CodeMalformed},
		{"send envelope without sealed", enc(m(0, 7, 1, []any{envelope(4, "DELETE")})), wire.CodeMalformed},
		{"send envelope without id", enc(m(0, 7, 1, []any{envelope(1, "DELETE")})), wire.CodeMalformed},
		{"send envelope mailbox without device", enc(m(0, 7, 1, []any{envelope(2, m(1, "bob@example.org"))})), wire.CodeMalformed},
		{"ack without ids", enc(m(0, 8)), wire.CodeMalformed},
		{"policy without lane switch", enc(m(0, 9, 1, [][]byte{})), wire.CodeMalformed},
		{"policy without verifiers", enc(m(0, 9, 2, true)), wire.CodeMalformed},
		{"remove-device without device", enc(m(0, 13)), wire.CodeMalformed},
		// null in a defined field (spec 1.6).
		{"register invite null", enc(m(0, 1, 1, "a@b", 2, keys, 3, nil, 4, sig)), wire.CodeMalformed},
		{"envelope token null", enc(m(0, 7, 1, []any{envelope(3, nil)})), wire.CodeMalformed},
		{"policy verifiers null", enc(m(0, 9, 1, nil, 2, true)), wire.CodeMalformed},
		{"policy lane switch null", enc(m(0, 9, 1, [][]byte{}, 2, nil)), wire.CodeMalformed},
		{"policy verifier element null", enc(m(0, 9, 1, []any{nil}, 2, true)), wire.CodeMalformed},
		{"publish last resort null", enc(m(0, 5, 2, nil)), wire.CodeMalformed},
		{"publish one-time null", enc(m(0, 5, 1, nil)), wire.CodeMalformed},
		{"register link null", enc(m(0, 1, 1, "a@b", 2, keys, 4, sig, 5, nil)), wire.CodeMalformed},
		{"remove-device device null", enc(m(0, 13, 1, nil)), wire.CodeMalformed},
		{"send envelope null", enc(m(0, 7, 1, []any{nil})), wire.CodeMalformed},
		// Optional keys, empty.
		{"register invite empty", enc(m(0, 1, 1, "a@b", 2, keys, 3, []byte{}, 4, sig)), wire.CodeMalformed},
		{"publish last resort empty", enc(m(0, 5, 2, []byte{})), wire.CodeMalformed},
		{"register link empty", enc(m(0, 1, 1, "a@b", 2, keys, 4, sig, 5, []byte{})), wire.CodeMalformed},
		{"publish one-time empty list", enc(m(0, 5, 1, [][]byte{})), wire.CodeOK},
		{"envelope token empty", enc(m(0, 7, 1, []any{envelope(3, []byte{})})), wire.CodeMalformed},
		// Wrong types and ranges.
		{"address as bstr", enc(m(0, 4, 1, []byte("bob@example.org"))), wire.CodeMalformed},
		{"signature as tstr", enc(m(0, 2, 1, "a@b", 2, 1, 3, string(sig))), wire.CodeMalformed},
		{"device 2^32", enc(m(0, 6, 1, "a@b", 2, uint64(1)<<32)), wire.CodeMalformed},
		{"device negative", enc(m(0, 6, 1, "a@b", 2, -1)), wire.CodeMalformed},
		{"KEM over 16 bits", enc(m(0, 1, 1, "a@b", 2, m(1, repeat(0x11, 32), 2, 0x1647a, 3, repeat(0x22, 1216)), 4, sig)), wire.CodeMalformed},
		{"lane switch as uint", enc(m(0, 9, 1, [][]byte{}, 2, 1)), wire.CodeMalformed},
		{"envelopes as map", enc(m(0, 7, 1, m(0, envelope()))), wire.CodeMalformed},
		{"mailbox as array", enc(m(0, 7, 1, []any{envelope(2, []any{"bob@example.org", 1})})), wire.CodeMalformed},
		{"ack id as tstr", enc(m(0, 8, 1, []any{"0123456789abcdef"})), wire.CodeMalformed},
		{"send valid", enc(m(0, 7, 1, []any{envelope()})), wire.CodeOK},
		{"register link as tstr", enc(m(0, 1, 1, "a@b", 2, keys, 4, sig, 5, "0123456789abcdef")), wire.CodeMalformed},
		{"register with link", enc(m(0, 1, 1, "a@b", 2, keys, 4, sig, 5, repeat(7, 16))), wire.CodeOK},
		{"create-link with unknown keys", enc(m(0, 12, 1, nil, 7, "x")), wire.CodeOK},
		{"remove-device as text", enc(m(0, 13, 1, "2")), wire.CodeMalformed},
		{"remove-device 2^32", enc(m(0, 13, 1, uint64(1)<<32)), wire.CodeMalformed},
		{"remove-device negative", enc(m(0, 13, 1, -2)), wire.CodeMalformed},
		{"remove-device valid", enc(m(0, 13, 1, 2)), wire.CodeOK},
		{"blob-create without size", enc(m(0, 14)), wire.CodeMalformed},
		{"blob-create size negative", enc(m(0, 14, 1, -1)), wire.CodeMalformed},
		{"blob-create size 2^64-1", unhex(t, "a2 00 0e 01 1bffffffffffffffff"), wire.CodeOK},
		{"blob-put without data", enc(m(0, 15, 1, repeat(1, 16), 2, 0)), wire.CodeMalformed},
		{"blob-put without index", enc(m(0, 15, 1, repeat(1, 16), 3, []byte{1})), wire.CodeMalformed},
		{"blob-put data as text", enc(m(0, 15, 1, repeat(1, 16), 2, 0, 3, "x")), wire.CodeMalformed},
		{"blob-put id null", enc(m(0, 15, 1, nil, 2, 0, 3, []byte{1})), wire.CodeMalformed},
		{"blob-status without id", enc(m(0, 16)), wire.CodeMalformed},
		{"blob-finish with unknown key", enc(m(0, 17, 1, repeat(1, 16), 9, "x")), wire.CodeOK},
		{"blob-get without domain", enc(m(0, 18, 2, repeat(1, 16), 3, 0, 4, 1)), wire.CodeMalformed},
		{"blob-get without offset", enc(m(0, 18, 1, "b.example", 2, repeat(1, 16), 4, 1)), wire.CodeMalformed},
		{"blob-get domain as bstr", enc(m(0, 18, 1, []byte("b.example"), 2, repeat(1, 16), 3, 0, 4, 1)), wire.CodeMalformed},
	}
}

func TestDecodeRequestRaw(t *testing.T) {
	for _, tt := range rawRequests(t) {
		t.Run(tt.name, func(t *testing.T) {
			r, err := wire.DecodeRequest(tt.b)
			wantCode(t, err, tt.want)
			if (err == nil) != (r != nil) {
				t.Errorf("request %v with error %v", r, err)
			}
		})
	}
}

func TestDecodeRequestOfInvalidCBOR(t *testing.T) {
	for _, tt := range cborCases {
		if tt.want == wire.CodeOK {
			continue
		}
		_, err := wire.DecodeRequest(unhex(t, tt.hex))
		t.Run(tt.name, func(t *testing.T) { wantCode(t, err, tt.want) })
	}
}

func TestEncodeRequestSetsType(t *testing.T) {
	r := &wire.GetDevices{Header: wire.Header{Type: 99}, Address: "a@b"}
	b, err := wire.EncodeRequest(r)
	if err != nil || !bytes.Equal(b, unhex(t, "08 a2 00 04 01 63 614062")) {
		t.Fatalf("EncodeRequest = %x, %v", b, err)
	}
	if r.Type != wire.TypeGetDevices {
		t.Fatalf("type %d", r.Type)
	}
}

// The device-auth message example of spec/05-accounts.md section 5.4.
func TestDeviceAuthMessage(t *testing.T) {
	exporter := repeat(0xee, 32)
	got := wire.DeviceAuthMessage("alice@example.org", 1, exporter)
	want := append([]byte("xchat/1 device-auth\x00"), 0x82, 0x71)
	want = append(want, "alice@example.org"...)
	want = append(want, 0x01)
	want = append(want, exporter...)
	if !bytes.Equal(got, want) {
		t.Fatalf("DeviceAuthMessage = %x\nwant %x", got, want)
	}
	if got := wire.DeviceAuthMessage("alice@example.org", 0, nil); got[len(got)-1] != 0x00 {
		t.Fatalf("register variant ends with %x", got[len(got)-1])
	}
}
