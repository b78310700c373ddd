package wire

// FedHello is the first request on a federation connection: the dialling
// server names its domain, which its TLS certificate must cover.
type FedHello struct {
	Header
	Domain string `cbor:"1,keyasint"`
}

// FedHelloOK answers FedHello with the listener's domain.
type FedHelloOK struct {
	Header
	Domain string `cbor:"1,keyasint"`
}

// Relay carries envelopes from another domain's homeserver.
type Relay struct {
	Header
	Envelopes []Envelope `cbor:"1,keyasint"`
}

// RelayOK answers Relay with one result per envelope, in order.
type RelayOK struct {
	Header
	Results []Code `cbor:"1,keyasint"`
}

func (r *FedHello) Validate() error { return ValidateDomain(r.Domain) }

func (r *Relay) Validate() error {
	s := Send{Envelopes: r.Envelopes}
	return s.Validate()
}

// DecodeFedRequest decodes and validates a request payload received on a
// federation connection (ALPN xchat-fed/1).
func DecodeFedRequest(b []byte) (Request, error) {
	t, err := peekType(b)
	if err != nil {
		return nil, err
	}
	var r Request
	switch t {
	case TypeFedHello:
		r = new(FedHello)
	case TypeRelay:
		r = new(Relay)
	case TypeFedBlobGet:
		r = new(FedBlobGet)
	case TypeFedCallJoin:
		r = new(FedCallJoin)
	case TypeFedCallLeave:
		r = new(FedCallLeave)
	case TypeServerInfo:
		r = new(ServerInfo)
	case TypeGetDevices:
		r = new(GetDevices)
	case TypeClaimKeyPackage:
		r = new(ClaimKeyPackage)
	default:
		return nil, Errorf(CodeUnknownRequest, "federation request type %d", t)
	}
	return decodeRequest(b, r)
}
