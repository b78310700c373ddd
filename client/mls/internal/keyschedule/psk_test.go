package keyschedule

import (
	"bytes"
	"testing"
)

func TestPSKSecretVectors(t *testing.T) {
	var cases []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		PSKs        []struct {
			ID    hexBytes `json:"psk_id"`
			PSK   hexBytes `json:"psk"`
			Nonce hexBytes `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret hexBytes `json:"psk_secret"`
	}
	loadVectors(t, "psk_secret.json", &cases)
	checked := 0
	for ci, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		checked++
		var psks []PSK
		for _, p := range c.PSKs {
			psks = append(psks, PSK{ID: PreSharedKeyID{Type: PSKTypeExternal, ID: p.ID, Nonce: p.Nonce}, Secret: p.PSK})
		}
		got, err := PSKSecret(cs, psks)
		if err != nil || !bytes.Equal(got, c.PSKSecret) {
			t.Errorf("case %d (suite %d, %d PSKs) psk_secret = %x, %v; want %x", ci, c.CipherSuite, len(psks), got, err, c.PSKSecret)
		}
	}
	t.Logf("%d of %d cases checked", checked, len(cases))
}
