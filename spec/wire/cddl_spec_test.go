package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/internal/cddl"
	"github.com/xchat-im/xchat/spec/wire"
)

// cddlTypes maps every map rule of spec/xchat.cddl to the Go type that
// encodes and decodes it.
var cddlTypes = map[string]reflect.Type{
	// requests (03-framing.md 3.3, 05 to 08)
	"register":             reflect.TypeFor[wire.Register](),
	"authenticate":         reflect.TypeFor[wire.Authenticate](),
	"server-info":          reflect.TypeFor[wire.ServerInfo](),
	"get-devices":          reflect.TypeFor[wire.GetDevices](),
	"publish-key-packages": reflect.TypeFor[wire.PublishKeyPackages](),
	"claim-key-package":    reflect.TypeFor[wire.ClaimKeyPackage](),
	"send":                 reflect.TypeFor[wire.Send](),
	"ack":                  reflect.TypeFor[wire.Ack](),
	"set-delivery-policy":  reflect.TypeFor[wire.SetDeliveryPolicy](),
	"get-sender-cert":      reflect.TypeFor[wire.GetSenderCert](),
	"get-domain-key":       reflect.TypeFor[wire.GetDomainKey](),
	"create-link":          reflect.TypeFor[wire.CreateLink](),
	"remove-device":        reflect.TypeFor[wire.RemoveDevice](),
	"fed-hello":            reflect.TypeFor[wire.FedHello](),
	"relay":                reflect.TypeFor[wire.Relay](),
	"blob-create":          reflect.TypeFor[wire.BlobCreate](),
	"blob-put":             reflect.TypeFor[wire.BlobPut](),
	"blob-status":          reflect.TypeFor[wire.BlobStatus](),
	"blob-finish":          reflect.TypeFor[wire.BlobFinish](),
	"blob-get":             reflect.TypeFor[wire.BlobGet](),
	"fed-blob-get":         reflect.TypeFor[wire.FedBlobGet](),
	"call-join":            reflect.TypeFor[wire.CallJoin](),
	"call-leave":           reflect.TypeFor[wire.CallLeave](),
	"fed-call-join":        reflect.TypeFor[wire.FedCallJoin](),
	"fed-call-leave":       reflect.TypeFor[wire.FedCallLeave](),
	// responses
	"success":                 reflect.TypeFor[wire.OK](),
	"error":                   reflect.TypeFor[wire.ErrorFrame](),
	"register-ok":             reflect.TypeFor[wire.RegisterOK](),
	"authenticate-ok":         reflect.TypeFor[wire.OK](),
	"server-info-ok":          reflect.TypeFor[wire.ServerInfoOK](),
	"limits":                  reflect.TypeFor[wire.Limits](),
	"get-devices-ok":          reflect.TypeFor[wire.GetDevicesOK](),
	"device-info":             reflect.TypeFor[wire.DeviceInfo](),
	"publish-key-packages-ok": reflect.TypeFor[wire.PublishKeyPackagesOK](),
	"claim-key-package-ok":    reflect.TypeFor[wire.ClaimKeyPackageOK](),
	"send-ok":                 reflect.TypeFor[wire.SendOK](),
	"ack-ok":                  reflect.TypeFor[wire.OK](),
	"set-delivery-policy-ok":  reflect.TypeFor[wire.OK](),
	"get-sender-cert-ok":      reflect.TypeFor[wire.SenderCertOK](),
	"get-domain-key-ok":       reflect.TypeFor[wire.DomainKeyOK](),
	"create-link-ok":          reflect.TypeFor[wire.CreateLinkOK](),
	"remove-device-ok":        reflect.TypeFor[wire.OK](),
	"fed-hello-ok":            reflect.TypeFor[wire.FedHelloOK](),
	"relay-ok":                reflect.TypeFor[wire.RelayOK](),
	"blob-create-ok":          reflect.TypeFor[wire.BlobCreateOK](),
	"blob-put-ok":             reflect.TypeFor[wire.BlobPutOK](),
	"blob-status-ok":          reflect.TypeFor[wire.BlobStatusOK](),
	"blob-finish-ok":          reflect.TypeFor[wire.BlobFinishOK](),
	"blob-get-ok":             reflect.TypeFor[wire.BlobGetOK](),
	"call-join-ok":            reflect.TypeFor[wire.CallJoinOK](),
	"call-leave-ok":           reflect.TypeFor[wire.OK](),
	"fed-call-join-ok":        reflect.TypeFor[wire.FedCallJoinOK](),
	"fed-call-leave-ok":       reflect.TypeFor[wire.OK](),
	// common structures
	"mailbox":     reflect.TypeFor[wire.Mailbox](),
	"device-keys": reflect.TypeFor[wire.DeviceKeys](),
	"envelope":    reflect.TypeFor[wire.Envelope](),
	// push frames
	"deliver":   reflect.TypeFor[wire.Deliver](),
	"delivery":  reflect.TypeFor[wire.Delivery](),
	"notice":    reflect.TypeFor[wire.Notice](),
	"caught-up": reflect.TypeFor[wire.CaughtUp](),
	// sealed content
	"sender-cert":        reflect.TypeFor[wire.SenderCert](),
	"sender-cert-body":   reflect.TypeFor[wire.SenderCertBody](),
	"inner":              reflect.TypeFor[wire.Inner](),
	"mls-payload":        reflect.TypeFor[wire.MLSPayload](),
	"group-meta":         reflect.TypeFor[wire.GroupMeta](),
	"link-proof-payload": reflect.TypeFor[wire.LinkProofPayload](),
	"fragment-payload":   reflect.TypeFor[wire.FragmentPayload](),
	"content":            reflect.TypeFor[wire.Content](),
	"file-ref":           reflect.TypeFor[wire.FileRef](),
	"call-signal":        reflect.TypeFor[wire.CallSignal](),
	"media-frame":        reflect.TypeFor[wire.MediaFrame](),
}

// cddlNoType lists the rules of spec/xchat.cddl that have no Go type of
// their own, with why.
var cddlNoType = map[string]string{
	"unknown-keys":      "a group: the extension point of every map; the Go decoder ignores keys a struct does not define",
	"register-account":  "an alternative of register, decoded as wire.Register",
	"register-device":   "an alternative of register, decoded as wire.Register",
	"request":           "a choice on key 0: DecodeRequest dispatches to the request types",
	"fed-request":       "a choice on key 0: DecodeFedRequest dispatches to the request types",
	"response":          "a choice on key 0: DecodeResponse gives an *Error or fills the -ok type",
	"push":              "a choice on key 0: DecodePush dispatches to Deliver and CaughtUp",
	"payload":           "a choice on key 0: DecodePayload dispatches to the payload modes",
	"address":           "a scalar: string fields, checked by ValidateAddress",
	"device-id":         "a scalar: uint32 fields",
	"envelope-id":       "a scalar: []byte fields",
	"ed25519-public":    "a scalar: []byte fields",
	"ed25519-signature": "a scalar: []byte fields",
	"error-code":        "a scalar: wire.Code",
	"kem-id":            "a scalar: DeviceKeys.KEM (uint16), the value KEMXWing",
	"xwing-public":      "a scalar: DeviceKeys.HPKEKey, XWingPublicKeyLen bytes",
	"invite-token":      "a scalar: Register.Invite",
	"key-package":       "a scalar: []byte; its content is an MLS KeyPackage (RFC 9420 encoding), inside MLS bytes",
	"link-token":        "a scalar: []byte fields, LinkTokenLen bytes",
	"sealed":            "a scalar: []byte; HPKE output, its plaintext is inner",
	"message-id":        "a scalar: []byte fields, MessageIDSize bytes",
	"content-type":      "a scalar: Content.Type",
	"blob-id":           "a scalar: []byte fields, BlobIDLen bytes",
	"room-id":           "a scalar: []byte fields, RoomIDLen bytes",
	"room-token":        "a scalar: []byte fields, RoomTokenLen bytes",
	"room-handle":       "a scalar: uint32 fields",
}

func loadSpecCDDL(t *testing.T) *cddl.Spec {
	t.Helper()
	src, err := os.ReadFile("../xchat.cddl")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cddl.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCDDLMatchesGoTypes compares, for every map rule of spec/xchat.cddl,
// its keys, their optionality and their value types with the CBOR tags
// and field types of its Go type, both ways, recursively.
func TestCDDLMatchesGoTypes(t *testing.T) {
	s := loadSpecCDDL(t)
	for _, name := range s.Order {
		_, typed := cddlTypes[name]
		_, untyped := cddlNoType[name]
		switch {
		case typed && untyped:
			t.Errorf("rule %s is in both cddlTypes and cddlNoType", name)
		case !typed && !untyped:
			t.Errorf("rule %s of xchat.cddl has no Go type in cddlTypes and no reason in cddlNoType", name)
		}
	}
	for _, table := range []map[string]bool{keysOf(cddlTypes), keysOf(cddlNoType)} {
		for name := range table {
			if s.Rules[name] == nil {
				t.Errorf("rule %s is not in xchat.cddl", name)
			}
		}
	}
	for _, name := range slices.Sorted(maps(cddlTypes)) {
		r := s.Rules[name]
		if r == nil || r.Type == nil {
			continue
		}
		c := comparer{s: s}
		c.compare(r.Type, cddlTypes[name], name)
		for _, e := range c.errs {
			t.Error(e)
		}
	}
}

func keysOf[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func maps[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

type comparer struct {
	s    *cddl.Spec
	errs []string
}

func (c *comparer) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// alts returns the alternatives of t with rule names and parentheses
// resolved, down to base types.
func (c *comparer) alts(t *cddl.Type) []*cddl.Type1 {
	var out []*cddl.Type1
	for _, a := range t.Alts {
		b := a.Base
		switch {
		case b.Kind == cddl.KindParen && a.Control == "":
			out = append(out, c.alts(b.Inner)...)
		case b.Kind == cddl.KindName && c.s.Rules[b.Name] != nil && c.s.Rules[b.Name].Type != nil && a.Control == "":
			out = append(out, c.alts(c.s.Rules[b.Name].Type)...)
		default:
			out = append(out, a)
		}
	}
	return out
}

// goField is one integer-keyed field of a Go struct.
type goField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

func goFields(rt reflect.Type, out map[uint64]goField) {
	for f := range rt.Fields() {
		tag, ok := f.Tag.Lookup("cbor")
		if f.Anonymous && !ok {
			goFields(f.Type, out)
			continue
		}
		if !ok || !f.IsExported() {
			continue
		}
		opts := strings.Split(tag, ",")
		k, err := strconv.ParseUint(opts[0], 10, 64)
		if err != nil || !slices.Contains(opts, "keyasint") {
			continue
		}
		out[k] = goField{name: f.Name, typ: f.Type, omitempty: slices.Contains(opts, "omitempty") || slices.Contains(opts, "omitzero")}
	}
}

func (c *comparer) compare(t *cddl.Type, gt reflect.Type, path string) {
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	alts := c.alts(t)
	switch {
	case gt.Kind() == reflect.Struct:
		c.compareMap(alts, gt, path)
	case gt.Kind() == reflect.Slice && gt.Elem().Kind() == reflect.Uint8:
		c.want(alts, path, gt, "bstr", "bytes")
	case gt.Kind() == reflect.String:
		c.want(alts, path, gt, "tstr", "text")
	case gt.Kind() == reflect.Bool:
		c.want(alts, path, gt, "bool")
	case gt.Kind() >= reflect.Uint && gt.Kind() <= reflect.Uint64:
		c.compareUint(alts, gt, path)
	case gt.Kind() == reflect.Slice:
		for _, a := range alts {
			if a.Base.Kind != cddl.KindArray {
				c.errorf("%s: the CDDL is %s, the Go type %s is a slice", path, describe(a), gt)
				continue
			}
			c.compare(a.Base.Entries[0].Value, gt.Elem(), path+"/[]")
		}
	default:
		c.errorf("%s: Go type %s not compared", path, gt)
	}
}

func describe(a *cddl.Type1) string {
	b := a.Base
	switch b.Kind {
	case cddl.KindName, cddl.KindText:
		return b.Name + a.Control
	case cddl.KindMap:
		return "a map"
	case cddl.KindArray:
		return "an array"
	}
	return "an unsigned integer"
}

func (c *comparer) want(alts []*cddl.Type1, path string, gt reflect.Type, names ...string) {
	for _, a := range alts {
		if a.Base.Kind != cddl.KindName || !slices.Contains(names, a.Base.Name) {
			c.errorf("%s: the CDDL is %s, the Go type is %s", path, describe(a), gt)
		}
	}
}

func (c *comparer) compareUint(alts []*cddl.Type1, gt reflect.Type, path string) {
	goMax := uint64(math.MaxUint64) >> (64 - gt.Bits())
	for _, a := range alts {
		var hi uint64
		switch b := a.Base; {
		case b.Kind == cddl.KindUint || b.Kind == cddl.KindRange:
			hi = b.Hi
		case b.Kind == cddl.KindName && b.Name == "uint":
			hi = math.MaxUint64
		default:
			c.errorf("%s: the CDDL is %s, the Go type is %s", path, describe(a), gt)
			continue
		}
		if hi > goMax {
			c.errorf("%s: the CDDL allows values up to %d, the Go type %s holds at most %d", path, hi, gt, goMax)
		}
	}
}

func (c *comparer) compareMap(alts []*cddl.Type1, gt reflect.Type, path string) {
	type key struct {
		entries  []*cddl.Entry
		optional bool
	}
	keys := map[uint64]*key{}
	for _, a := range alts {
		if a.Base.Kind != cddl.KindMap {
			c.errorf("%s: the CDDL is %s, the Go type %s is a struct", path, describe(a), gt)
			return
		}
		for _, e := range c.s.Entries(a.Base) {
			if !e.HasKey {
				continue
			}
			k := keys[e.Key]
			if k == nil {
				k = &key{}
				keys[e.Key] = k
			}
			k.entries = append(k.entries, e)
			k.optional = k.optional || e.Optional()
		}
	}
	for _, k := range keys {
		if len(k.entries) < len(alts) {
			k.optional = true // absent from an alternative
		}
	}
	fields := map[uint64]goField{}
	goFields(gt, fields)
	for n, k := range keys {
		f, ok := fields[n]
		p := fmt.Sprintf("%s/%d", path, n)
		if !ok {
			c.errorf("%s: CDDL key %d has no field in %s", path, n, gt)
			continue
		}
		switch {
		case k.optional && !f.omitempty:
			c.errorf("%s: optional in the CDDL, but %s.%s has no omitempty (decoding requires it)", p, gt.Name(), f.name)
		case !k.optional && f.omitempty:
			c.errorf("%s: required in the CDDL, but %s.%s has omitempty (encoding may leave it out)", p, gt.Name(), f.name)
		}
		for _, e := range k.entries {
			c.compare(e.Value, f.typ, p)
		}
	}
	for n, f := range fields {
		if keys[n] == nil {
			c.errorf("%s: %s.%s has CBOR key %d, which the CDDL does not define", path, gt.Name(), f.name, n)
		}
	}
}

// TestCDDLMapsAreOpen checks that every map of spec/xchat.cddl accepts the
// unknown keys that section 1.7 tells receivers to ignore.
func TestCDDLMapsAreOpen(t *testing.T) {
	s := loadSpecCDDL(t)
	var walk func(rule string, ty *cddl.Type)
	walk = func(rule string, ty *cddl.Type) {
		if ty == nil {
			return
		}
		for _, a := range ty.Alts {
			switch b := a.Base; b.Kind {
			case cddl.KindMap:
				open := false
				for _, e := range s.Entries(b) {
					open = open || e.KeyType != nil && e.Max == math.MaxUint64
					walk(rule, e.Value)
				}
				if !open {
					t.Errorf("rule %s: a map without unknown-keys (01-conventions.md 1.7)", rule)
				}
			case cddl.KindArray:
				walk(rule, b.Entries[0].Value)
			case cddl.KindParen:
				walk(rule, b.Inner)
			}
		}
	}
	for _, name := range s.Order {
		walk(name, s.Rules[name].Type)
	}
}

// payloadOf strips the length of a frame.
func payloadOf(t *testing.T, frame []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	n, l, err := wire.ParseVarint(frame)
	if err != nil || int(n) != len(frame)-l {
		t.Fatalf("frame %x: %v", frame, err)
	}
	return frame[l:]
}

// TestEncodersMatchCDDL encodes values of the response, push, federation
// and sealed-content types with the code's own encoders and checks the
// bytes against their CDDL rules. TestCDDLMatchesGoTypes compares the
// shapes; this checks what the encoders emit (key 0, omitted keys).
// Requests are checked the same way by the vectors (TestVectorsMatchCDDL).
func TestEncodersMatchCDDL(t *testing.T) {
	s := loadSpecCDDL(t)
	b := func(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }
	keys := wire.DeviceKeys{SigKey: b(32, 1), KEM: wire.KEMXWing, HPKEKey: b(wire.XWingPublicKeyLen, 2)}
	check := func(rule string, p []byte, extra ...string) {
		t.Helper()
		for _, r := range append([]string{rule}, extra...) {
			if err := s.Validate(r, p); err != nil {
				t.Errorf("%s: the code's encoding %.64x does not match the CDDL: %v", r, p, err)
			}
		}
	}
	pl := func(frame []byte, err error) []byte {
		t.Helper()
		return payloadOf(t, frame, err)
	}
	ok := func(rule string, p []byte) {
		t.Helper()
		check(rule, p, "response", "success")
	}
	ok("register-ok", pl(wire.EncodeSuccess(&wire.RegisterOK{Device: 1})))
	for _, r := range []string{"authenticate-ok", "ack-ok", "set-delivery-policy-ok", "remove-device-ok"} {
		ok(r, pl(wire.EncodeSuccess(&wire.OK{})))
	}
	ok("server-info-ok", pl(wire.EncodeSuccess(&wire.ServerInfoOK{Domain: "example.org", CertKey: b(32, 3), Registration: wire.RegistrationInvite,
		Limits: wire.Limits{MaxFrame: wire.MaxFrame, MaxSealed: 66672, MaxEnvelopesPerSend: 256, MaxIDsPerAck: 1024,
			MaxKeyPackages: 1000, MaxKeyPackageLen: 16384, RetentionSeconds: 2592000, MailboxMaxEnvelopes: 10000}})))
	ok("get-devices-ok", pl(wire.EncodeSuccess(&wire.GetDevicesOK{Devices: []wire.DeviceInfo{{ID: 1, Keys: keys}, {ID: 4294967295, Keys: keys}}})))
	ok("get-devices-ok", pl(wire.EncodeSuccess(&wire.GetDevicesOK{})))
	ok("publish-key-packages-ok", pl(wire.EncodeSuccess(&wire.PublishKeyPackagesOK{Stored: 0})))
	ok("claim-key-package-ok", pl(wire.EncodeSuccess(&wire.ClaimKeyPackageOK{KeyPackage: b(100, 4)})))
	ok("send-ok", pl(wire.EncodeSuccess(&wire.SendOK{Results: []wire.Code{wire.CodeOK, wire.CodeRateLimited}})))
	ok("get-sender-cert-ok", pl(wire.EncodeSuccess(&wire.SenderCertOK{Cert: b(10, 5)})))
	ok("get-domain-key-ok", pl(wire.EncodeSuccess(&wire.DomainKeyOK{Key: b(32, 6)})))
	ok("create-link-ok", pl(wire.EncodeSuccess(&wire.CreateLinkOK{Token: b(wire.LinkTokenLen, 7), Expires: 1798761600})))
	ok("fed-hello-ok", pl(wire.EncodeSuccess(&wire.FedHelloOK{Domain: "b.example"})))
	ok("relay-ok", pl(wire.EncodeSuccess(&wire.RelayOK{Results: []wire.Code{wire.CodeMailboxFull}})))
	ok("server-info-ok", pl(wire.EncodeSuccess(&wire.ServerInfoOK{Domain: "example.org", CertKey: b(32, 3), Registration: wire.RegistrationOpen,
		Limits: wire.Limits{MaxFrame: wire.MaxFrame, MaxSealed: 66672, MaxEnvelopesPerSend: 256, MaxIDsPerAck: 1024,
			MaxKeyPackages: 1000, MaxKeyPackageLen: 16384, RetentionSeconds: 2592000, MailboxMaxEnvelopes: 10000,
			MaxBlobSize: wire.MaxBlobSize, BlobQuota: wire.BlobQuota, BlobRetentionSeconds: wire.BlobRetention,
			UploadLifetimeSeconds: wire.UploadLifetime, MaxUnfinishedUploads: wire.MaxUnfinished}})))
	ok("blob-create-ok", pl(wire.EncodeSuccess(&wire.BlobCreateOK{ID: b(wire.BlobIDLen, 30), Expires: 1798761600000})))
	ok("blob-put-ok", pl(wire.EncodeSuccess(&wire.BlobPutOK{Received: wire.BlobPartSize})))
	ok("blob-status-ok", pl(wire.EncodeSuccess(&wire.BlobStatusOK{Size: 568, Received: 0, Complete: false, Expires: 1})))
	ok("blob-status-ok", pl(wire.EncodeSuccess(&wire.BlobStatusOK{Size: 568, Received: 568, Complete: true, Expires: 2})))
	ok("blob-finish-ok", pl(wire.EncodeSuccess(&wire.BlobFinishOK{Expires: 1798761600000})))
	ok("blob-get-ok", pl(wire.EncodeSuccess(&wire.BlobGetOK{Data: b(wire.BlobPartSize, 31), Size: 5319713863})))

	// The file requests have no vectors yet: check their encoders here.
	blobID := b(wire.BlobIDLen, 35)
	check("blob-create", pl(wire.EncodeRequest(&wire.BlobCreate{Size: wire.MinBlobSize})), "request")
	check("blob-put", pl(wire.EncodeRequest(&wire.BlobPut{ID: blobID, Index: 2, Data: b(wire.BlobPartSize, 36)})), "request")
	check("blob-status", pl(wire.EncodeRequest(&wire.BlobStatus{ID: blobID})), "request")
	check("blob-finish", pl(wire.EncodeRequest(&wire.BlobFinish{ID: blobID})), "request")
	check("blob-get", pl(wire.EncodeRequest(&wire.BlobGet{Domain: "b.example", ID: blobID, Offset: 0, Length: wire.BlobPartSize})), "request")
	check("fed-blob-get", pl(wire.EncodeRequest(&wire.FedBlobGet{ID: blobID, Offset: 1 << 32, Length: 1})), "fed-request")

	// The call requests and content have no vectors: check their encoders here.
	room, token := b(wire.RoomIDLen, 37), b(wire.RoomTokenLen, 38)
	check("call-join", pl(wire.EncodeRequest(&wire.CallJoin{Room: room, Token: token, Domains: []string{"b.example"}})), "request")
	check("call-join", pl(wire.EncodeRequest(&wire.CallJoin{Room: room, Token: token, Domains: []string{}})), "request")
	ok("call-join-ok", pl(wire.EncodeSuccess(&wire.CallJoinOK{Handle: 1<<32 - 1})))
	check("call-leave", pl(wire.EncodeRequest(&wire.CallLeave{Handle: 7})), "request")
	check("fed-call-join", pl(wire.EncodeRequest(&wire.FedCallJoin{Room: room, Token: token, Handle: 9})), "fed-request")
	ok("fed-call-join-ok", pl(wire.EncodeSuccess(&wire.FedCallJoinOK{Handle: 10})))
	check("fed-call-leave", pl(wire.EncodeRequest(&wire.FedCallLeave{Handle: 10})), "fed-request")
	check("call-signal", mustEncode(t, &wire.CallSignal{CallID: b(wire.CallIDLen, 39), Kind: wire.SignalInvite, Media: wire.MediaAudio | wire.MediaVideo, Room: room, Token: token}))
	check("call-signal", mustEncode(t, &wire.CallSignal{CallID: b(wire.CallIDLen, 39), Kind: wire.SignalHangup, Reason: wire.HangupNoAnswer}))
	check("media-frame", mustEncode(t, &wire.MediaFrame{Kind: wire.KindAudio, Codec: "pcmu", Timestamp: 20000, Payload: b(160, 40), Echo: []uint64{1, 2, 3}}))

	check("error", payloadOf(t, wire.EncodeError(wire.Errorf(wire.CodeAuthFailed, "no")), nil), "response")
	check("error", payloadOf(t, wire.EncodeError(&wire.Error{Code: wire.CodeRateLimited, Message: strings.Repeat("é", 600), RetryAfter: 1500 * time.Millisecond}), nil), "response")

	deliveries := []wire.Delivery{{ID: b(16, 8), Sealed: b(1392, 9), ReceivedAt: 1, Lane: wire.LaneToken},
		{ID: b(16, 10), Sealed: b(20, 11), ReceivedAt: 2, Lane: wire.LaneNotice}}
	check("deliver", pl(wire.EncodePush(&wire.Deliver{Deliveries: deliveries})), "push")
	check("caught-up", pl(wire.EncodePush(&wire.CaughtUp{})), "push")
	check("notice", mustEncode(t, &wire.Notice{ID: b(16, 12), To: wire.Mailbox{Address: "carol@c.example", Device: 1}, Code: wire.CodeExpired}))

	domain := ed25519.NewKeyFromSeed(b(32, 13))
	body := wire.SenderCertBody{Address: "alice@example.org", Device: 2, SigKey: b(32, 14), Expires: 1798761600}
	cert, err := wire.IssueSenderCert(domain, body)
	if err != nil {
		t.Fatal(err)
	}
	check("sender-cert", cert)
	check("sender-cert-body", mustEncode(t, &body))
	mls := mustEncode(t, &wire.MLSPayload{Mode: wire.PayloadMLS, Message: b(wire.MaxFragmentData*2, 15), Token: b(32, 16),
		Meta: &wire.GroupMeta{Kind: wire.GroupKindDirect, Name: "family"}})
	check("mls-payload", mls, "payload")
	check("mls-payload", mustEncode(t, &wire.MLSPayload{Mode: wire.PayloadMLS, Message: b(1, 15)}), "payload")
	check("group-meta", mustEncode(t, &wire.GroupMeta{}))
	check("link-proof-payload", mustEncode(t, &wire.LinkProofPayload{Mode: wire.PayloadLinkProof, Token: b(16, 17),
		Proof: wire.LinkProof(b(16, 18), "alice@example.org", 3, b(32, 19))}), "payload")
	frags, err := wire.Fragment(mls)
	if err != nil || len(frags) < 2 {
		t.Fatalf("Fragment: %d fragments, %v", len(frags), err)
	}
	for _, f := range frags {
		check("fragment-payload", f, "payload")
	}
	check("inner", mustEncode(t, &wire.Inner{Cert: cert, Signature: b(64, 20), Payload: mls}))
	text, state := "hi", uint64(2)
	id := wire.MessageID(b(40, 21))
	check("content", mustEncode(t, &wire.Content{Type: wire.ContentText, SentAt: 1, Text: &text}))
	check("content", mustEncode(t, &wire.Content{Type: wire.ContentReceipt, SentAt: 1, IDs: [][]byte{id[:]}, State: &state}))
	check("content", mustEncode(t, &wire.Content{Type: wire.ContentReaction, SentAt: 1, Ref: id[:], Reaction: new(string)}))
	file := &wire.FileRef{Domain: "example.org", BlobID: b(wire.BlobIDLen, 32), Key: b(wire.FileKeyLen, 33), Hash: b(wire.FileHashLen, 34),
		Size: wire.MaxFileSize, MediaType: "application/octet-stream", Name: "report 2026.pdf"}
	check("content", mustEncode(t, &wire.Content{Type: wire.ContentFile, SentAt: 1, File: file}))
	check("content", mustEncode(t, &wire.Content{Type: wire.ContentFile, SentAt: 1, Text: &text, File: file}))
	check("file-ref", mustEncode(t, file))
	check("mailbox", wire.Mailbox{Address: "bob@example.org", Device: 1}.Encode())
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	p, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
