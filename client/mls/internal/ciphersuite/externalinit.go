package ciphersuite

import "crypto/hpke"

// labelExternalInit is the HPKE exporter label of an external commit's
// init_secret (RFC 9420 section 8.3).
const labelExternalInit = "MLS 1.0 external init secret"

// ExternalInitSecret recovers the init_secret of an external commit from
// its KEM output, as a member does.
func (cs *CipherSuite) ExternalInitSecret(externalSecret, kemOutput []byte) ([]byte, error) {
	priv, _, err := cs.DeriveKeyPair(externalSecret)
	if err != nil {
		return nil, err
	}
	sk, err := cs.kem.NewPrivateKey(cs.padHPKEPriv(priv))
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(kemOutput, sk, cs.kdf, cs.aead, nil)
	if err != nil {
		return nil, err
	}
	return r.Export(labelExternalInit, cs.Nh())
}

// NewExternalInit creates the KEM output and init_secret of an external
// commit to the group's external_pub.
func (cs *CipherSuite) NewExternalInit(externalPub []byte) (kemOutput, initSecret []byte, err error) {
	pk, err := cs.kem.NewPublicKey(externalPub)
	if err != nil {
		return nil, nil, err
	}
	enc, s, err := hpke.NewSender(pk, cs.kdf, cs.aead, nil)
	if err != nil {
		return nil, nil, err
	}
	initSecret, err = s.Export(labelExternalInit, cs.Nh())
	return enc, initSecret, err
}
