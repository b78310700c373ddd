package secrettree

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

func TestSecretTreeVectors(t *testing.T) {
	var cases []struct {
		CipherSuite      uint16   `json:"cipher_suite"`
		EncryptionSecret hexBytes `json:"encryption_secret"`
		SenderData       struct {
			SenderDataSecret hexBytes `json:"sender_data_secret"`
			Ciphertext       hexBytes `json:"ciphertext"`
			Key              hexBytes `json:"key"`
			Nonce            hexBytes `json:"nonce"`
		} `json:"sender_data"`
		Leaves [][]struct {
			Generation       uint32   `json:"generation"`
			ApplicationKey   hexBytes `json:"application_key"`
			ApplicationNonce hexBytes `json:"application_nonce"`
			HandshakeKey     hexBytes `json:"handshake_key"`
			HandshakeNonce   hexBytes `json:"handshake_nonce"`
		} `json:"leaves"`
	}
	loadVectors(t, "secret-tree.json", &cases)
	checked := 0
	for ci, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		checked++
		sd := c.SenderData
		key, nonce, err := SenderDataKeyNonce(cs, sd.SenderDataSecret, sd.Ciphertext)
		if err != nil || !bytes.Equal(key, sd.Key) || !bytes.Equal(nonce, sd.Nonce) {
			t.Errorf("case %d sender data key/nonce = %x/%x, %v", ci, key, nonce, err)
		}
		tree := NewSecretTree(cs, c.EncryptionSecret, uint32(len(c.Leaves)))
		// Take leaves in reverse to exercise partially consumed trees.
		for i := len(c.Leaves) - 1; i >= 0; i-- {
			hs, app, err := tree.LeafRatchets(treemath.LeafIndex(i))
			if err != nil {
				t.Fatalf("case %d leaf %d: %v", ci, i, err)
			}
			for _, g := range c.Leaves[i] {
				k, n, err := hs.KeyAt(g.Generation)
				if err != nil || !bytes.Equal(k, g.HandshakeKey) || !bytes.Equal(n, g.HandshakeNonce) {
					t.Errorf("case %d leaf %d gen %d handshake = %x/%x, %v", ci, i, g.Generation, k, n, err)
				}
				k, n, err = app.KeyAt(g.Generation)
				if err != nil || !bytes.Equal(k, g.ApplicationKey) || !bytes.Equal(n, g.ApplicationNonce) {
					t.Errorf("case %d leaf %d gen %d application = %x/%x, %v", ci, i, g.Generation, k, n, err)
				}
			}
		}
		if _, _, err := tree.LeafRatchets(0); err == nil {
			t.Errorf("case %d: leaf 0 ratchets taken twice", ci)
		}
	}
	t.Logf("%d of %d cases checked", checked, len(cases))
}

func TestHashRatchetRefuses(t *testing.T) {
	cs, _ := ciphersuite.LookupSuite(ciphersuite.X25519AES128GCMSHA256Ed25519)
	r := &HashRatchet{cs: cs, secret: make([]byte, 32)}
	if _, _, err := r.KeyAt(3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.KeyAt(2); err == nil {
		t.Fatal("went back a generation")
	}
	if _, _, err := r.KeyAt(MaxRatchetSkip + 100); err == nil {
		t.Fatal("skipped too far")
	}
}
