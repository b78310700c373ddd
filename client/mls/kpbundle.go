package mls

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// KeyPackageOptions tunes NewKeyPackage. The zero value (or nil) gives a
// key package valid from an hour ago for 90 days whose capabilities list
// the suite, the basic credential type and the credential's own type.
type KeyPackageOptions struct {
	// NotBefore and NotAfter bound the lifetime; zero values mean an hour
	// ago and 90 days from now.
	NotBefore, NotAfter time.Time
	// CredentialTypes are added to the leaf's Capabilities.Credentials
	// (xchat leaves list CredentialTypeXchat this way).
	CredentialTypes []uint16
	// Extensions are added to the leaf's Capabilities.Extensions.
	Extensions []uint16
	// LeafExtensions and KeyPackageExtensions go into the leaf node and
	// the key package.
	LeafExtensions, KeyPackageExtensions []Extension
}

// XchatKeyPackageOptions returns options whose leaf capabilities include
// CredentialTypeXchat.
func XchatKeyPackageOptions() *KeyPackageOptions {
	return &KeyPackageOptions{CredentialTypes: []uint16{CredentialTypeXchat}}
}

// KeyPackageBundle is a KeyPackage with the private keys its owner keeps:
// the init key (used once, to join by Welcome), the leaf encryption key and
// the signature key.
type KeyPackageBundle struct {
	KeyPackage     KeyPackage
	InitPriv       []byte
	EncryptionPriv []byte
	SignaturePriv  []byte
}

// defaultCapabilities lists what this implementation supports.
func defaultCapabilities(cs *CipherSuite, credTypes, exts []uint16) message.Capabilities {
	c := message.Capabilities{
		Versions:     []uint16{message.ProtocolVersionMLS10},
		CipherSuites: []uint16{uint16(cs.ID())},
		Credentials:  []uint16{message.CredentialTypeBasic},
	}
	for _, t := range credTypes {
		if !slices.Contains(c.Credentials, t) {
			c.Credentials = append(c.Credentials, t)
		}
	}
	c.Extensions = slices.Clone(exts)
	return c
}

// NewKeyPackage creates a KeyPackage for credential cred whose signature
// key is sigPriv (RFC 9420 section 10), with fresh init and leaf
// encryption keys.
func NewKeyPackage(cs *CipherSuite, cred Credential, sigPriv []byte, opts *KeyPackageOptions) (*KeyPackageBundle, error) {
	if opts == nil {
		opts = &KeyPackageOptions{}
	}
	sigPub, err := cs.SignaturePublicKey(sigPriv)
	if err != nil {
		return nil, err
	}
	initPriv, initPub, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	encPriv, encPub, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = now.Add(90 * 24 * time.Hour)
	}
	if !na.After(nb) {
		return nil, errors.New("mls: key package lifetime ends before it starts")
	}
	creds := append([]uint16{cred.Type}, opts.CredentialTypes...)
	leaf := message.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sigPub,
		Credential:    cred,
		Capabilities:  defaultCapabilities(cs, creds, opts.Extensions),
		Source:        message.LeafNodeSourceKeyPackage,
		Lifetime:      message.Lifetime{NotBefore: unixSeconds(nb), NotAfter: unixSeconds(na)},
		Extensions:    slices.Clone(opts.LeafExtensions),
	}
	if err := ratchettree.SignLeafNode(cs, sigPriv, &leaf, nil, 0); err != nil {
		return nil, err
	}
	kp := KeyPackage{
		Version:     message.ProtocolVersionMLS10,
		CipherSuite: cs.ID(),
		InitKey:     initPub,
		LeafNode:    leaf,
		Extensions:  slices.Clone(opts.KeyPackageExtensions),
	}
	tbs, err := keyPackageTBS(&kp)
	if err != nil {
		return nil, err
	}
	if kp.Signature, err = cs.SignWithLabel(sigPriv, "KeyPackageTBS", tbs); err != nil {
		return nil, err
	}
	return &KeyPackageBundle{KeyPackage: kp, InitPriv: initPriv, EncryptionPriv: encPriv, SignaturePriv: slices.Clone(sigPriv)}, nil
}

func unixSeconds(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s)
}

// keyPackageTBS encodes KeyPackageTBS: the key package without its
// signature.
func keyPackageTBS(kp *KeyPackage) ([]byte, error) {
	var w codec.Writer
	w.Uint16(kp.Version)
	w.Uint16(uint16(kp.CipherSuite))
	w.Opaque(kp.InitKey)
	kp.LeafNode.Marshal(&w)
	codec.WriteList(&w, kp.Extensions)
	return w.Bytes()
}

// Ref returns the KeyPackageRef of the bundle's key package.
func (b *KeyPackageBundle) Ref() ([]byte, error) {
	cs, err := LookupSuite(b.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	return welcome.KeyPackageRef(cs, &b.KeyPackage)
}

// Message returns the key package as an encoded MLSMessage, the form that
// is published and that ParseKeyPackage reads.
func (b *KeyPackageBundle) Message() ([]byte, error) {
	kp := b.KeyPackage
	m := MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: &kp}
	return m.MarshalBinary()
}

// MarshalBinary encodes the bundle, private keys included, for storage.
func (b *KeyPackageBundle) MarshalBinary() ([]byte, error) {
	var w codec.Writer
	w.Uint8(1) // format version
	b.KeyPackage.Marshal(&w)
	w.Opaque(b.InitPriv)
	w.Opaque(b.EncryptionPriv)
	w.Opaque(b.SignaturePriv)
	return w.Bytes()
}

// UnmarshalKeyPackageBundle decodes a bundle encoded by MarshalBinary.
func UnmarshalKeyPackageBundle(data []byte) (*KeyPackageBundle, error) {
	r := codec.NewReader(data)
	d := codec.Dec{R: r}
	var b KeyPackageBundle
	if v := d.U8(); d.Err == nil && v != 1 {
		return nil, fmt.Errorf("mls: key package bundle format %d", v)
	}
	d.Do(b.KeyPackage.Unmarshal)
	b.InitPriv = slices.Clone(d.Opaque())
	b.EncryptionPriv = slices.Clone(d.Opaque())
	b.SignaturePriv = slices.Clone(d.Opaque())
	if d.Err == nil {
		d.Fail(r.Done())
	}
	if d.Err != nil {
		return nil, fmt.Errorf("mls: key package bundle: %w", d.Err)
	}
	return &b, nil
}

// ParseKeyPackage decodes a KeyPackage from an encoded MLSMessage (or a
// bare KeyPackage) and checks its signatures.
func ParseKeyPackage(data []byte) (*KeyPackage, error) {
	data = slices.Clone(data)
	var kp KeyPackage
	var m MLSMessage
	if err := m.UnmarshalBinary(data); err == nil && m.WireFormat == WireFormatKeyPackage {
		kp = *m.KeyPackage
	} else if err := codec.UnmarshalAll(data, &kp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	cs, err := LookupSuite(kp.CipherSuite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := verifyKeyPackage(cs, &kp, time.Now()); err != nil {
		return nil, err
	}
	return &kp, nil
}

// verifyKeyPackage checks a key package by itself (RFC 9420 section
// 10.1): suite and version, signatures, leaf source and lifetime, and
// distinct init and encryption keys.
func verifyKeyPackage(cs *CipherSuite, kp *KeyPackage, now time.Time) error {
	if kp.Version != message.ProtocolVersionMLS10 || kp.CipherSuite != cs.ID() {
		return fmt.Errorf("%w: version %d suite 0x%04x", ErrInvalidKeyPackage, kp.Version, uint16(kp.CipherSuite))
	}
	tbs, err := keyPackageTBS(kp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := cs.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if kp.LeafNode.Source != message.LeafNodeSourceKeyPackage {
		return fmt.Errorf("%w: leaf node source %d", ErrInvalidKeyPackage, kp.LeafNode.Source)
	}
	if err := ratchettree.VerifyLeafNodeSignature(cs, &kp.LeafNode, nil, 0); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	t := unixSeconds(now)
	if lt := kp.LeafNode.Lifetime; t < lt.NotBefore || t > lt.NotAfter {
		return fmt.Errorf("%w: outside its lifetime", ErrInvalidKeyPackage)
	}
	if string(kp.InitKey) == string(kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init key equals encryption key", ErrInvalidKeyPackage)
	}
	return nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}
