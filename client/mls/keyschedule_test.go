package mls

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

func TestKeyScheduleVectors(t *testing.T) {
	var cases []struct {
		CipherSuite       uint16   `json:"cipher_suite"`
		GroupID           hexBytes `json:"group_id"`
		InitialInitSecret hexBytes `json:"initial_init_secret"`
		Epochs            []struct {
			TreeHash                hexBytes `json:"tree_hash"`
			CommitSecret            hexBytes `json:"commit_secret"`
			PSKSecret               hexBytes `json:"psk_secret"`
			ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
			GroupContext            hexBytes `json:"group_context"`
			JoinerSecret            hexBytes `json:"joiner_secret"`
			WelcomeSecret           hexBytes `json:"welcome_secret"`
			InitSecret              hexBytes `json:"init_secret"`
			SenderDataSecret        hexBytes `json:"sender_data_secret"`
			EncryptionSecret        hexBytes `json:"encryption_secret"`
			ExporterSecret          hexBytes `json:"exporter_secret"`
			EpochAuthenticator      hexBytes `json:"epoch_authenticator"`
			ExternalSecret          hexBytes `json:"external_secret"`
			ConfirmationKey         hexBytes `json:"confirmation_key"`
			MembershipKey           hexBytes `json:"membership_key"`
			ResumptionPSK           hexBytes `json:"resumption_psk"`
			ExternalPub             hexBytes `json:"external_pub"`
			Exporter                struct {
				// The label is used as the ASCII text of its hex
				// digits, as other implementations do.
				Label   string   `json:"label"`
				Context hexBytes `json:"context"`
				Length  int      `json:"length"`
				Secret  hexBytes `json:"secret"`
			} `json:"exporter"`
		} `json:"epochs"`
	}
	loadVectors(t, "key-schedule.json", &cases)
	checked, epochs := 0, 0
	for ci, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		checked++
		initSecret := []byte(c.InitialInitSecret)
		for i, ep := range c.Epochs {
			epochs++
			gc := message.GroupContext{
				CipherSuite:             cs.ID(),
				GroupID:                 c.GroupID,
				Epoch:                   uint64(i),
				TreeHash:                ep.TreeHash,
				ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
			}
			gcb, err := gc.MarshalBinary()
			if err != nil || !bytes.Equal(gcb, ep.GroupContext) {
				t.Errorf("case %d epoch %d group context = %x, %v", ci, i, gcb, err)
			}
			var back message.GroupContext
			if err := back.UnmarshalBinary(ep.GroupContext); err != nil || back.Epoch != uint64(i) || !bytes.Equal(back.TreeHash, ep.TreeHash) {
				t.Errorf("case %d epoch %d group context decode: %v", ci, i, err)
			}
			e, err := keyschedule.DeriveEpoch(cs, initSecret, ep.CommitSecret, ep.PSKSecret, ep.GroupContext)
			if err != nil {
				t.Fatalf("case %d epoch %d: %v", ci, i, err)
			}
			for _, f := range []struct {
				name      string
				got, want []byte
			}{
				{"joiner_secret", e.JoinerSecret, ep.JoinerSecret},
				{"welcome_secret", e.WelcomeSecret, ep.WelcomeSecret},
				{"init_secret", e.InitSecret, ep.InitSecret},
				{"sender_data_secret", e.SenderDataSecret, ep.SenderDataSecret},
				{"encryption_secret", e.EncryptionSecret, ep.EncryptionSecret},
				{"exporter_secret", e.ExporterSecret, ep.ExporterSecret},
				{"epoch_authenticator", e.EpochAuthenticator, ep.EpochAuthenticator},
				{"external_secret", e.ExternalSecret, ep.ExternalSecret},
				{"confirmation_key", e.ConfirmationKey, ep.ConfirmationKey},
				{"membership_key", e.MembershipKey, ep.MembershipKey},
				{"resumption_psk", e.ResumptionPSK, ep.ResumptionPSK},
			} {
				if !bytes.Equal(f.got, f.want) {
					t.Errorf("case %d epoch %d %s = %x, want %x", ci, i, f.name, f.got, f.want)
				}
			}
			if pub, err := keyschedule.ExternalPub(cs, e.ExternalSecret); err != nil || !bytes.Equal(pub, ep.ExternalPub) {
				t.Errorf("case %d epoch %d external_pub = %x, %v", ci, i, pub, err)
			}
			x := ep.Exporter
			if got, err := keyschedule.Export(cs, e.ExporterSecret, x.Label, x.Context, x.Length); err != nil || !bytes.Equal(got, x.Secret) {
				t.Errorf("case %d epoch %d exporter = %x, %v", ci, i, got, err)
			}
			initSecret = e.InitSecret
		}
	}
	t.Logf("%d of %d cases checked (%d epochs)", checked, len(cases), epochs)
}
