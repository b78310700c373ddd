package server_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// server-info announces the registration limit (limits keys 9 and 10,
// spec/05-accounts.md section 5.1), and the server applies what it
// announces: the burst of attempts from one address passes (here to the
// closed policy), the next one is rate_limited with a retry-after within
// the announced interval.
func TestServerInfoAnnouncesRegistrationLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Registration: server.RegistrationClosed})
	r := servertest.Dial(t, s)
	var info wire.ServerInfoOK
	if err := r.Request(&wire.ServerInfo{}, &info); err != nil {
		t.Fatal(err)
	}
	burst, interval := info.Limits.RegistrationBurst, time.Duration(info.Limits.RegistrationIntervalMs)*time.Millisecond
	if burst != 20 || interval != 30*time.Second {
		t.Fatalf("announced %d attempts, then one per %v; want 20 and 30s (spec/15-limits.md)", burst, interval)
	}
	for i := range burst {
		d := servertest.NewDevice(t, fmt.Sprintf("u%d@a.test", i))
		servertest.MustCode(t, r.Register(d, nil), wire.CodeRegistrationClosed)
	}
	err := r.Register(servertest.NewDevice(t, "late@a.test"), nil)
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited {
		t.Fatalf("attempt %d: %v, want rate_limited", burst+1, err)
	}
	if retry := pe.RetryAfter; retry <= 0 || retry > interval {
		t.Fatalf("retry-after %v, want within (0, %v]", retry, interval)
	}
}

// server-info announces the blob limits (keys 11 to 15, spec/11-files.md
// section 11.8): the defaults, and no quota or unfinished bound where the
// operator set none.
func TestServerInfoAnnouncesBlobLimits(t *testing.T) {
	t.Parallel()
	info := func(l server.Limits) wire.Limits {
		s := servertest.Start(t, servertest.Options{Limits: l})
		var ok wire.ServerInfoOK
		if err := servertest.Dial(t, s).Request(&wire.ServerInfo{}, &ok); err != nil {
			t.Fatal(err)
		}
		return ok.Limits
	}
	l := info(server.Limits{})
	if l.MaxBlobSize != wire.MaxBlobSize || l.BlobQuota != wire.BlobQuota || l.BlobRetentionSeconds != wire.BlobRetention ||
		l.UploadLifetimeSeconds != wire.UploadLifetime || l.MaxUnfinishedUploads != wire.MaxUnfinished {
		t.Errorf("default blob limits %+v", l)
	}
	if l.BlobRetentionSeconds < l.RetentionSeconds {
		t.Errorf("blob retention %d s below the mailbox retention %d s", l.BlobRetentionSeconds, l.RetentionSeconds)
	}
	l = info(server.Limits{BlobQuota: -1, MaxUnfinished: -1})
	if l.BlobQuota != 0 || l.MaxUnfinishedUploads != 0 || l.MaxBlobSize == 0 {
		t.Errorf("no quota and no unfinished bound: %+v, want keys 12 and 15 absent, 11 present", l)
	}
}
