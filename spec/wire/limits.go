package wire

import "time"

// Limits of spec/15-limits.md.
const (
	MaxFrame             = 1 << 20  // payload bytes of one frame
	MaxPreAuthFrame      = 16 << 10 // payload bytes of a frame before authentication
	MaxDepth             = 8        // CBOR nesting, a top-level item is depth 1
	MaxArray             = 1024     // elements of one CBOR array
	MaxMapPairs          = 64       // pairs of one CBOR map
	MaxEnvelopesPerSend  = 256
	MaxIDsPerAck         = 1024
	MaxDeliveriesPerPush = 64
	MaxDevicesPerAccount = 16
	MaxKeyPackagesPerPub = 100
	MaxKeyPackagesStored = 1000
	MaxKeyPackageLen     = 16384
	MaxVerifiers         = 64
	MaxInviteToken       = 64
	LinkTokenLen         = 16 // bytes of a link token
	MaxLinkTokens        = 5  // unexpired link tokens per account
	MaxErrorMessage      = 1024
	MinBucket            = 256   // smallest padded plaintext
	MaxBucket            = 65536 // largest padded plaintext
	MailboxMaxEnvelopes  = 10000
	MailboxMaxBytes      = 256 << 20
	MaxConcurrentStreams = 100
	// What the envelopes relayed from one origin domain may hold of a
	// device mailbox: a quarter of each mailbox limit.
	MailboxMaxPerOrigin      = MailboxMaxEnvelopes / 4
	MailboxMaxBytesPerOrigin = MailboxMaxBytes / 4
	MaxRelaysInFlight        = 16 // relay requests in flight on one federation connection

	Retention         = 30 * 24 * time.Hour
	SenderCertTTL     = 24 * time.Hour
	IdleTimeout       = 30 * time.Second
	KeepAlive         = 15 * time.Second
	AuthDeadline      = 10 * time.Second
	RequestDeadline   = 30 * time.Second
	HandshakeDeadline = 10 * time.Second
	RequestLaneBurst  = 20
	RequestLaneRefill = 3 * time.Minute
	LinkTokenTTL      = 10 * time.Minute
)

// KEM identifiers of device HPKE keys.
const (
	KEMXWing = 0x647a // MLKEM768-X25519 (X-Wing)
)

// XWing sizes.
const (
	XWingPublicKeyLen = 1216
	XWingEncLen       = 1120
	AEADTagLen        = 16
)

// ALPN protocol identifiers.
const (
	ALPN           = "xchat/1"
	ALPNFederation = "xchat-fed/1"
)

// ExporterLabel is the TLS exporter label for device authentication.
const ExporterLabel = "EXPORTER-xchat-device-auth"

// Signature and derivation contexts; each is followed by one 0x00 byte.
const (
	ContextDeviceAuth    = "xchat/1 device-auth"
	ContextSenderCert    = "xchat/1 sender-cert"
	ContextSealed        = "xchat/1 sealed"
	ContextEnvelope      = "xchat/1 envelope"
	ContextDeliveryToken = "xchat/1 delivery-token"
	ContextNotice        = "xchat/1 notice"
)

// QUIC application error codes for closing connections.
const (
	CloseNoError           = 0
	CloseProtocolViolation = 1
	CloseAuthTimeout       = 2
	CloseServerShutdown    = 3
	CloseInternal          = 4
	CloseDeviceRemoved     = 5 // the connection's device was removed (spec/05-accounts.md 5.11)
	// StreamRequestCancelled resets a request stream.
	StreamRequestCancelled = 0x10
)

// SealedLenOK reports whether n is a valid sealed length for a recipient key
// whose KEM encapsulation is encLen bytes: encLen + 2^k + 16, 8 <= k <= 16.
func SealedLenOK(n, encLen int) bool {
	p := n - encLen - AEADTagLen
	return p >= MinBucket && p <= MaxBucket && p&(p-1) == 0
}

// Bucket returns the padded plaintext length for n plaintext bytes (the
// inner item plus its 0x80 byte), or 0 when n exceeds MaxBucket.
func Bucket(n int) int {
	b := MinBucket
	for b < n {
		b <<= 1
	}
	if b > MaxBucket {
		return 0
	}
	return b
}
