package server_test

import (
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want server.Rate
	}{
		{"20/3s", server.Rate{Burst: 20, Interval: 3 * time.Second}},
		{"200/1m30s", server.Rate{Burst: 200, Interval: 90 * time.Second}},
		{"none", server.Rate{Burst: -1}},
	} {
		got, err := server.ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := server.ParseRate(got.String()); err != nil || back != got {
			t.Errorf("ParseRate(%q.String() = %q) = %+v, %v", c.in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "20", "20/", "/3s", "0/3s", "-1/3s", "20/0s", "20/-3s", "x/3s", "20/3"} {
		if r, err := server.ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %+v, want an error", bad, r)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int64
		back string
	}{
		{"10GiB", 10 << 30, "10GiB"},
		{"16MiB", 16 << 20, "16MiB"},
		{"1536KiB", 1536 << 10, "1536KiB"},
		{"2TiB", 2 << 40, "2TiB"},
		{"1000", 1000, "1000"},
		{"2048", 2048, "2KiB"},
		{"none", -1, "none"},
	} {
		got, err := server.ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if s := server.FormatSize(got); s != c.back {
			t.Errorf("FormatSize(%d) = %q, want %q", got, s, c.back)
		}
	}
	for _, bad := range []string{"", "0", "-1", "10GB", "GiB", "1.5GiB", "x", "9000000TiB", "10 GiB"} {
		if n, err := server.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, n)
		}
	}
	if b := server.FedBlobBurst(server.DefaultFedBlobRate); b != server.DefaultFedBlobBurst || server.DefaultFedBlobBurst != 64<<20 {
		t.Errorf("default burst %d, want 64 MiB", b)
	}
	if b := server.FedBlobBurst(1); b != 512<<10 {
		t.Errorf("burst of a tiny rate %d, want one part", b)
	}
}
