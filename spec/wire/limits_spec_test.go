package wire_test

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// limitRow says where the Go code holds the values of one row of the table
// of spec/15-limits.md section 15.1.
type limitRow struct {
	// values are Go constant expressions (see constIndex.eval), one per
	// number in the row's Value column, in order; "?" where no named
	// constant holds the number (note says why).
	values []string
	// field is the wire.Limits field of the row's server-info key, if any;
	// fields separated by commas when the row names several keys, in the
	// order of the keys.
	field string
	note  string
}

// limitRows maps the Limit column of every row of section 15.1 to its
// constants. A row missing here, or an entry here without its row, fails.
var limitRows = map[string]limitRow{
	"Frame payload length":                    {values: []string{"MaxFrame", "MaxFrame"}, field: "MaxFrame"},
	"CBOR nesting depth (arrays and maps)":    {values: []string{"MaxDepth"}},
	"Elements per array":                      {values: []string{"MaxArray"}},
	"Pairs per map":                           {values: []string{"MaxMapPairs"}},
	"Error message length":                    {values: []string{"MaxErrorMessage"}},
	"Address length":                          {values: []string{"1 + 1 + 1", "MaxAddress"}},
	"Local part length":                       {values: []string{"1", "MaxLocalPart"}},
	"Domain length":                           {values: []string{"1", "MaxDomain", "1", "?"}, note: "the label length 63 is checked by ValidateDomain, not a named constant"},
	"Invite token length":                     {values: []string{"1", "MaxInviteToken"}},
	"HPKE public key length (X-Wing)":         {values: []string{"XWingPublicKeyLen"}},
	"Devices per account":                     {values: []string{"MaxDevicesPerAccount"}},
	"Link token length":                       {values: []string{"LinkTokenLen"}},
	"Unexpired link tokens per account":       {values: []string{"MaxLinkTokens"}},
	"Link token lifetime":                     {values: []string{"LinkTokenTTL"}},
	"Sender certificate validity":             {values: []string{"SenderCertTTL", "?", "seal.ClockSkew"}, note: "the client's refresh threshold of 1 h is not a named constant"},
	"Key package length":                      {values: []string{"1", "MaxKeyPackageLen"}, field: "MaxKeyPackageLen"},
	"One-time key packages per publish":       {values: []string{"MaxKeyPackagesPerPub"}},
	"One-time key packages stored per device": {values: []string{"MaxKeyPackagesStored"}, field: "MaxKeyPackages"},
	"One-time key packages claimed per requesting account (past it: the last-resort package)": {values: []string{"server.claimRequesterBurst", "1", "server.claimRequesterRefill"}},
	"One-time key packages claimed per device (past it: the last-resort package)":             {values: []string{"server.claimTargetBurst", "1", "server.claimTargetRefill"}},
	"Envelopes per `send`": {values: []string{"1", "MaxEnvelopesPerSend"}, field: "MaxEnvelopesPerSend"},
	"Sealed length": {values: []string{"2", "AEADTagLen", "log2(MinBucket)", "log2(MaxBucket)",
		"XWingEncLen + MinBucket + AEADTagLen", "XWingEncLen + MaxBucket + AEADTagLen"}, field: "MaxSealed"},
	"Encoded `inner` length":                       {values: []string{"MaxBucket - 1"}},
	"Token verifiers per account":                  {values: []string{"MaxVerifiers"}},
	"Request-lane budget per recipient account":    {values: []string{"RequestLaneBurst", "1", "RequestLaneRefill"}},
	"Envelopes waiting per device mailbox":         {values: []string{"MailboxMaxEnvelopes"}, field: "MailboxMaxEnvelopes"},
	"Bytes waiting per device mailbox":             {values: []string{"MailboxMaxBytes", "MailboxMaxBytes"}},
	"Mailbox retention":                            {values: []string{"Retention", "Retention"}, field: "RetentionSeconds"},
	"Deliveries per `deliver` frame":               {values: []string{"1", "MaxDeliveriesPerPush"}},
	"Envelope identifiers per `ack`":               {values: []string{"1", "MaxIDsPerAck"}, field: "MaxIDsPerAck"},
	"Processed identifiers remembered by a client": {values: []string{"client.processedFor"}},
	"Concurrent request streams per connection":    {values: []string{"MaxConcurrentStreams"}},
	"Unidirectional streams opened by a client":    {values: []string{"?"}, note: "a QUIC transport setting of the server (MaxIncomingUniStreams), not a constant"},
	"Push streams per connection":                  {values: []string{"?", "?"}, note: "the server opens one push stream and a client allows at least one; behaviour, not a constant"},
	"QUIC handshake timeout":                       {values: []string{"HandshakeDeadline"}},
	"Authentication deadline":                      {values: []string{"AuthDeadline"}},
	"Idle timeout":                                 {values: []string{"IdleTimeout"}},
	"Client keep-alive interval":                   {values: []string{"KeepAlive"}},
	"Request deadline":                             {values: []string{"RequestDeadline"}},
	"Request frame before authentication":          {values: []string{"MaxPreAuthFrame", "MaxPreAuthFrame"}},
	"Concurrent connections per server":            {values: []string{"server.DefaultMaxConnections"}},
	"`register` attempts per source IP address":    {values: []string{"server.registrationBurst", "1", "server.registrationRefill"}, field: "RegistrationBurst,RegistrationIntervalMs"},
	"Concurrent client connections per source address (an IPv4 address, or an IPv6 /64)": {values: []string{"server.DefaultConnsPerAddress"}},
	"Concurrent authenticated connections per account":                                   {values: []string{"server.DefaultConnsPerAccount"}},
	"Failed `authenticate` attempts per source address":                                  {values: []string{"server.authFailAddrBurst", "1", "server.authFailAddrRefill"}},
	"Failed `authenticate` attempts per account named":                                   {values: []string{"server.authFailAccountBurst", "1", "server.authFailAccountRefill"}},
	"`get-devices` and `claim-key-package` for this domain naming an unknown account or device, per requesting account": {
		values: []string{"server.lookupMissBurst", "1", "server.lookupMissRefill"}},
	"Requests of one device that reach other domains (`get-devices`, `claim-key-package`, `get-domain-key` for remote addresses)": {
		values: []string{"server.lookupBurst", "1", "server.lookupRefill"}},
	"Default homeserver port (no SRV record)":                                     {values: []string{"federation.DefaultPort"}},
	"`fed-hello` deadline":                                                        {values: []string{"AuthDeadline"}},
	"Request frame before `fed-hello`":                                            {values: []string{"MaxPreAuthFrame", "MaxPreAuthFrame"}},
	"Dialler keep-alive interval while envelopes are queued for the peer":         {values: []string{"KeepAlive"}},
	"`relay` requests in flight per federation connection":                        {values: []string{"MaxRelaysInFlight"}},
	"Connections of one origin domain after `fed-hello`":                          {values: []string{"federation.maxConnsPerOrigin"}},
	"Request frame bytes read or handled at once, client connections":             {values: []string{"server.frameBudgetConn", "server.frameBudgetAccount", "server.frameBudgetServer"}},
	"Request frame bytes read or handled at once, federation connections":         {values: []string{"federation.fedFrameBudgetConn", "federation.fedFrameBudgetOrigin", "federation.fedFrameBudgetAll"}},
	"Envelopes per `relay`":                                                       {values: []string{"1", "MaxEnvelopesPerSend"}},
	"Outbound queue per submitting account":                                       {values: []string{"federation.outboundAccountEnvelopes", "federation.outboundAccountBytes", "federation.outboundAccountDomains"}},
	"Outbound queue per destination domain":                                       {values: []string{"federation.outboundDomainEnvelopes", "federation.outboundDomainBytes"}},
	"Relay budget per origin domain":                                              {values: []string{"federation.DefaultRelayBurst", "federation.DefaultRelayRate", "time.Second"}},
	"Key-directory budget per origin domain (`get-devices`, `claim-key-package`)": {values: []string{"federation.queryBurst", "federation.queryRate", "time.Second"}},
	"Retry backoff at the origin":                                                 {values: []string{"federation.DefaultMaxRetry", "federation.DefaultRetry", "2", "2"}},
	"Outbound queue lifetime of an envelope":                                      {values: []string{"federation.DefaultOutboundTTL"}},
	"Claim lease of a relay worker":                                               {values: []string{"federation.DefaultLease"}},
	"Cache lifetime of another domain's sender-certificate key":                   {values: []string{"federation.domainKeyTTL"}},
	"Leaves (devices) per MLS group":                                              {values: []string{"mls.defaultMaxMembers"}},
	"MLSMessage in a payload":                                                     {values: []string{"1", "MaxMLSMessage", "MaxMLSPayload", "MaxFragments", "MaxFragmentData"}},
	"Fragments kept by a recipient":                                               {values: []string{"client.maxFragmentBytes", "client.heldFor"}},
	"Devices added by one commit":                                                 {values: []string{"client.maxAddPerCommit"}},
	"Past epochs kept by a member (late messages, commit races)":                  {values: []string{"mls.defaultMaxRetainedEpochs"}},
	"Skipped generations per sender and epoch":                                    {values: []string{"mls.defaultMaxOutOfOrder"}},
	"MLS messages held for an unknown group or future epoch":                      {values: []string{"client.maxHeldPerGroup", "client.heldFor"}},
	"Key packages a client keeps published":                                       {values: []string{"client.keyPackageTarget", "client.keyPackageLow", "?"}, note: "the 90-day lifetime is a literal of the MLS key-package bundle"},
	"Group name":                                                                  {values: []string{"0", "MaxGroupName"}},
	"Link secret":                                                                 {values: []string{"LinkSecretSize", "LinkTokenTTL"}},
	"Text of one message":                                                         {values: []string{"0", "MaxContentText"}},
	"Reaction":                                                                    {values: []string{"0", "MaxReaction"}},
	"Messages covered by one receipt":                                             {values: []string{"1", "MaxReceiptIDs"}},
	"Own-device copies kept in the sender's outbox (after `mailbox_full`, `rate_limited`, `request_lane_closed`)": {
		values: []string{"client.ownCopyRetention"}},
	"Envelopes and bytes waiting per device mailbox that were relayed from one origin domain": {
		values: []string{"MailboxMaxPerOrigin", "MailboxMaxBytesPerOrigin"}},
	"Wait of a client for another domain's key": {
		values: []string{"client.domainKeyTimeout", "client.domainKeyRetry", "client.lookupBudget"}},
	"Tries of a client on an envelope it cannot open (a domain's key unavailable)": {
		values: []string{"client.unopenedMaxTries", "client.unopenedMaxAge"}},
	"Records of envelopes a client could not open": {
		values: []string{"client.unopenedKeep", "client.processedFor"}},
	"Encryption chunk of a file":  {values: []string{"FileChunkSize", "FileChunkSize"}},
	"File size":                   {values: []string{"0", "MaxFileSize", "MaxFileSize"}},
	"File name":                   {values: []string{"1", "MaxFileName"}},
	"Media type of a file":        {values: []string{"1", "MaxMediaType"}},
	"Blob size":                   {values: []string{"MinBlobSize", "MaxBlobSize", "MaxBlobSize"}, field: "MaxBlobSize"},
	"Blob part (`blob-put` data)": {values: []string{"BlobPartSize", "BlobPartSize"}},
	"Range of one `blob-get` or `fed-blob-get`":                                    {values: []string{"1", "BlobPartSize"}},
	"Blob quota per account (unexpired blobs, unfinished ones at their full size)": {values: []string{"BlobQuota", "BlobQuota"}, field: "BlobQuota"},
	"Unfinished uploads per account":                                               {values: []string{"MaxUnfinished"}, field: "MaxUnfinishedUploads"},
	"Lifetime of an unfinished upload":                                             {values: []string{"UploadLifetime * time.Second"}, field: "UploadLifetimeSeconds"},
	"Retention of a finished blob":                                                 {values: []string{"BlobRetention * time.Second", "BlobRetention * time.Second"}, field: "BlobRetentionSeconds"},
	"Automatic download of a file by a client":                                     {values: []string{"AutoFetchLimit", "AutoFetchLimit"}},
	"Blob-read budget per origin domain (`fed-blob-get`)":                          {values: []string{"server.DefaultFedBlobBurst", "server.DefaultFedBlobRate", "time.Second"}},
	"Media packet (a QUIC DATAGRAM payload)":                                       {values: []string{"CallPacketHeader + 1", "MaxCallPacket", "CallPacketHeader"}},
	"SFrame ciphertext of one call frame":                                          {values: []string{"1", "MaxCallFrame", "1", "MaxPacketFragments"}},
	"Other domains named by one `call-join`":                                       {values: []string{"0", "MaxCallDomains"}},
	"Ring timeout of a call":                                                       {values: []string{"RingTimeout * time.Second"}},
	"Wait of a receiver for a call frame's fragments":                              {values: []string{"ReassemblyWindow * time.Millisecond", "ReassemblyFrames"}},
	"Past epochs whose SFrame keys a call receiver keeps":                          {values: []string{"CallPastEpochs", "CallEpochGrace * time.Millisecond"}},
	"SFrame replay window of a call receiver":                                      {values: []string{"ReplayWindow"}},
	"Devices of one server in one call room":                                       {values: []string{"MaxCallMembers"}, field: "MaxCallMembers"},
	"Call rooms the devices of one account are in at once":                         {values: []string{"MaxCallRooms"}, field: "MaxCallRooms"},
	"Frames a second of one sending device in one call room":                       {values: []string{"MaxCallFrameRate"}},
	"Packets a second of one sending device in one call room":                      {values: []string{"MaxCallPacketRate"}},
	"Call rooms linked by one origin domain on a server":                           {values: []string{"MaxPeerRooms"}},
	"Idle time of a call room without members":                                     {values: []string{"CallRoomIdle * time.Second"}},
}

// notLimits are the exported constants of the limit blocks of spec/wire
// that no row of section 15.1 states, with why.
var notLimits = map[string]string{
	"LinkKeyHashSize":       "a field size of the link code shown between two devices (09-mls.md 9.5), not a limit of the protocol",
	"LinkProofSize":         "the output size of HMAC-SHA256 (09-mls.md 9.5)",
	"MessageIDSize":         "the output size of SHA-256 (10-content.md 10.2)",
	"MaxMLSPayloadOverhead": "MaxMLSPayload - MaxMLSMessage: the row states both ends (09-mls.md 9.6)",
	"BlobIDLen":             "a field size: the blob identifier (11-files.md 11.6)",
	"FileKeyLen":            "a field size: the file key (11-files.md 11.2)",
	"FileHashLen":           "the output size of SHA-256 (11-files.md 11.4)",
}

var (
	quantity = regexp.MustCompile(`(\d[\d,]*)(?:\s*(GiB|MiB|KiB|bytes|byte|minutes|minute|min|days|day|h|s)\b)?`)
	unitOf   = map[string]int64{"": 1, "bytes": 1, "byte": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
		"s": 1e9, "min": 60e9, "minute": 60e9, "minutes": 60e9, "h": 3600e9, "day": 86400e9, "days": 86400e9}
)

// quantities returns the numbers of a Value cell in base units: bytes, or
// nanoseconds for times. "per second" counts as 1 s.
func quantities(t *testing.T, cell string) []int64 {
	t.Helper()
	cell = strings.ReplaceAll(cell, "per second", "per 1 s")
	var out []int64
	for _, m := range quantity.FindAllStringSubmatch(cell, -1) {
		n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("value %q: %v", cell, err)
		}
		out = append(out, n*unitOf[m[2]])
	}
	return out
}

func column(t *testing.T, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("table has no column %q: %q", name, header)
	}
	return i
}

// TestLimitsTable compares every row of spec/15-limits.md section 15.1
// with the Go constants that hold its values, and its server-info key with
// the CBOR key of the wire.Limits field; and every constant of the limit
// blocks of spec/wire with a row.
func TestLimitsTable(t *testing.T) {
	ix := moduleConsts(t)
	header, rows := mdTable(t, "15-limits.md", "## 15.1")
	cLimit, cValue, cKey := column(t, header, "Limit"), column(t, header, "Value"), column(t, header, "server-info `limits` key")
	limitsKeys := cborKeys(reflect.TypeFor[wire.Limits]())
	seen := map[string]bool{}
	used := map[string]bool{}
	fieldRows := map[string]string{}
	for _, row := range rows {
		name := row[cLimit]
		entry, ok := limitRows[name]
		if !ok {
			t.Errorf("15-limits.md: row %q has no entry in limitRows (map it to its constants)", name)
			continue
		}
		seen[name] = true
		got := quantities(t, row[cValue])
		if len(got) != len(entry.values) {
			t.Errorf("15-limits.md row %q: value %q has %d numbers %v, the test expects %d (%q)", name, row[cValue], len(got), got, len(entry.values), entry.values)
			continue
		}
		for i, expr := range entry.values {
			if expr == "?" {
				if entry.note == "" {
					t.Errorf("row %q: unchecked value without a note", name)
				}
				continue
			}
			for _, id := range identRe.FindAllString(expr, -1) {
				used[id] = true
			}
			if want := ix.eval(t, expr); got[i] != want {
				t.Errorf("15-limits.md row %q: number %d of %q is %d, the code's %s is %d", name, i+1, row[cValue], got[i], expr, want)
			}
		}
		key := strings.TrimSpace(row[cKey])
		switch {
		case key == "" && entry.field != "":
			t.Errorf("15-limits.md row %q: no server-info key, but the code announces it as Limits.%s", name, entry.field)
		case key != "" && entry.field == "":
			t.Errorf("15-limits.md row %q: server-info key %s, but the test maps no Limits field", name, key)
		case key != "":
			fields := strings.Split(entry.field, ",")
			keys := serverInfoKeyRe.FindAllStringSubmatch(key, -1)
			if len(keys) != len(fields) {
				t.Errorf("15-limits.md row %q: server-info keys %q, the test maps %d Limits fields (%s)", name, key, len(fields), entry.field)
				continue
			}
			for i, f := range fields {
				k, _ := strconv.Atoi(keys[i][1])
				if limitsKeys[f] != k {
					t.Errorf("15-limits.md row %q: server-info key %d, Limits.%s has CBOR key %d", name, k, f, limitsKeys[f])
				}
				fieldRows[f] = name
			}
		}
	}
	for name := range limitRows {
		if !seen[name] {
			t.Errorf("limitRows: %q is no row of 15-limits.md section 15.1", name)
		}
	}
	for field := range limitsKeys {
		if fieldRows[field] == "" {
			t.Errorf("wire.Limits.%s has no row of 15-limits.md with its server-info key", field)
		}
	}
	// Every limit constant of spec/wire is stated by a row.
	var consts []string
	consts = append(consts, declaredConsts(t, "limits.go", "Limits of spec/15-limits.md")...)
	consts = append(consts, declaredConsts(t, "payload.go", "Payload limits")...)
	consts = append(consts, declaredConsts(t, "content.go", "Content limits")...)
	consts = append(consts, declaredConsts(t, "address.go", "Address limits")...)
	consts = append(consts, declaredConsts(t, "limits.go", "XWing sizes")...)
	consts = append(consts, declaredConsts(t, "blob.go", "Blob limits and sizes")...)
	for _, c := range consts {
		if !used[c] && notLimits[c] == "" && !strings.HasPrefix(c, "Context") {
			t.Errorf("spec/wire constant %s is a limit that no row of 15-limits.md section 15.1 states", c)
		}
	}
}

var identRe = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// serverInfoKeyRe finds the keys of a "server-info `limits` key" cell such
// as "9 (20), 10 (30,000 ms)": a number followed by its value in
// parentheses or by the end of the cell.
var serverInfoKeyRe = regexp.MustCompile(`\b(\d+)\s*(?:\(|$)`)

// TestServerInfoLimitsTable compares the table of spec/15-limits.md
// section 15.2 with the CBOR keys of wire.Limits and the values that the
// constants give, both ways.
func TestServerInfoLimitsTable(t *testing.T) {
	ix := moduleConsts(t)
	header, rows := mdTable(t, "15-limits.md", "## 15.2")
	cKey, cValue := column(t, header, "Key"), column(t, header, "v0 value")
	values := map[string]string{ // what a v0 server announces, as the server builds it
		"MaxFrame":               "MaxFrame",
		"MaxSealed":              "XWingEncLen + MaxBucket + AEADTagLen",
		"MaxEnvelopesPerSend":    "MaxEnvelopesPerSend",
		"MaxIDsPerAck":           "MaxIDsPerAck",
		"MaxKeyPackages":         "MaxKeyPackagesStored",
		"MaxKeyPackageLen":       "MaxKeyPackageLen",
		"RetentionSeconds":       "Retention / time.Second",
		"MailboxMaxEnvelopes":    "MailboxMaxEnvelopes",
		"RegistrationBurst":      "server.registrationBurst",
		"RegistrationIntervalMs": "server.registrationRefill / time.Millisecond",
		"MaxBlobSize":            "MaxBlobSize",
		"BlobQuota":              "BlobQuota",
		"BlobRetentionSeconds":   "BlobRetention",
		"UploadLifetimeSeconds":  "UploadLifetime",
		"MaxUnfinishedUploads":   "MaxUnfinished",
		"MaxCallMembers":         "MaxCallMembers",
		"MaxCallRooms":           "MaxCallRooms",
	}
	byKey := map[int]string{}
	for f, k := range cborKeys(reflect.TypeFor[wire.Limits]()) {
		byKey[k] = f
		if values[f] == "" {
			t.Errorf("wire.Limits.%s: the test does not know its announced value", f)
		}
	}
	for _, row := range rows {
		k, err := strconv.Atoi(row[cKey])
		if err != nil {
			t.Fatalf("15.2 key %q: %v", row[cKey], err)
		}
		f, ok := byKey[k]
		if !ok {
			t.Errorf("15-limits.md 15.2 key %d: no field of wire.Limits has this CBOR key", k)
			continue
		}
		delete(byKey, k)
		got := quantities(t, row[cValue])
		if want := ix.eval(t, values[f]); len(got) != 1 || got[0] != want {
			t.Errorf("15-limits.md 15.2 key %d (Limits.%s): value %q, the code announces %d", k, f, row[cValue], want)
		}
	}
	for k, f := range byKey {
		t.Errorf("wire.Limits.%s (CBOR key %d) has no row in 15-limits.md section 15.2", f, k)
	}
}

// cborKeys returns the integer CBOR keys of a struct's fields, by field
// name.
func cborKeys(rt reflect.Type) map[string]int {
	keys := map[string]int{}
	for f := range rt.Fields() {
		tag, ok := f.Tag.Lookup("cbor")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(strings.Split(tag, ",")[0])
		if err == nil {
			keys[f.Name] = k
		}
	}
	return keys
}
