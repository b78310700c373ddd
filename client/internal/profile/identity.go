package profile

// Identity is the profile's registered device: at most one a profile.
type Identity struct {
	Address string
	Device  uint32
	Server  string // host:port of the homeserver
	CAFile  string // extra root CA, or empty
	SigSeed []byte // Ed25519 seed of the signature key
	HPKEKey []byte // the HPKE private key
	Token   []byte // the account's delivery token
	State   int    // how far registration got (the client's meaning)
}

// Identity returns the profile's identity.
func (t *Tx) Identity() (*Identity, error) {
	var id Identity
	err := t.get("identity", `SELECT address, device, server, ca_file, sig_seed, hpke_key, token, state FROM identity`, nil,
		&id.Address, &id.Device, &id.Server, &id.CAFile, &id.SigSeed, &id.HPKEKey, &id.Token, &id.State)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// InsertIdentity stores the identity of a profile that has none.
func (t *Tx) InsertIdentity(id *Identity) error {
	_, err := t.exec("save identity", `INSERT INTO identity (id, address, device, server, ca_file, sig_seed, hpke_key, token, state)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`, id.Address, id.Device, id.Server, id.CAFile, id.SigSeed, id.HPKEKey, id.Token, id.State)
	return err
}

// SetRegistration records the device number and registration state.
func (t *Tx) SetRegistration(device uint32, state int) error {
	_, err := t.exec("save identity", `UPDATE identity SET device = ?, state = ?`, device, state)
	return err
}

// SetServer records the homeserver address and the CA file used to reach
// it, for a registration resumed with corrected settings.
func (t *Tx) SetServer(server, caFile string) error {
	_, err := t.exec("save identity", `UPDATE identity SET server = ?, ca_file = ?`, server, caFile)
	return err
}

// SetOwnToken replaces the account's delivery token.
func (t *Tx) SetOwnToken(token []byte) error {
	_, err := t.exec("save identity", `UPDATE identity SET token = ?`, token)
	return err
}

// DeleteIdentity deletes the identity.
func (t *Tx) DeleteIdentity() error {
	_, err := t.exec("delete identity", `DELETE FROM identity`)
	return err
}
