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
