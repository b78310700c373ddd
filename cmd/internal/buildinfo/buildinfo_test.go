package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	host := runtime.GOOS + "/" + runtime.GOARCH
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil,
			"xchat (devel) (revision unknown) " + runtime.Version() + " " + host},
		{"go test or go run", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/xchat-im/xchat"}},
			"xchat (devel) (revision unknown) go1.26.8 " + host},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0129f5b0a1b2c3d4e5f60718293a4b5c6d7e8f90"},
			{Key: "vcs.time", Value: "2026-12-07T18:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			"xchat v0.4.0 (revision 0129f5b0a1b2c3d4e5f60718293a4b5c6d7e8f90, 2026-12-07T18:00:00Z) go1.26.8 linux/arm64"},
		{"modified tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.1-0.20261207180000-0129f5b0a1b2+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0129f5b0a1b2"}, {Key: "vcs.modified", Value: "true"}}},
			"xchat v0.4.1-0.20261207180000-0129f5b0a1b2+dirty (revision 0129f5b0a1b2, modified) go1.26.8 " + host},
	} {
		if got := FromBuildInfo(c.bi).Format("xchat"); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// The test binary itself has build information without a module version
// or a revision.
func TestReadInTest(t *testing.T) {
	t.Parallel()
	i := Read()
	if i.Version == "" || i.Revision == "" || !strings.HasPrefix(i.GoVersion, "go") || !strings.Contains(i.Platform, "/") {
		t.Fatalf("Read() = %+v: a field is empty", i)
	}
}
