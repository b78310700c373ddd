// Package buildinfo describes how the running binary was built: the module
// version, the version-control revision it was built from and the Go
// toolchain, for the version commands of xchat and xchatd.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what a binary knows about its own build.
type Info struct {
	// Version is the main module's version: a release tag, a pseudo-version,
	// or "(devel)" when the build has none (go run, go test, a build
	// from a work tree without version-control stamping).
	Version string
	// Revision is the version-control revision, or "unknown" when the
	// build was not stamped (-buildvcs=false, no .git, go test).
	Revision string
	// Time is the commit time of Revision in RFC 3339, or empty.
	Time string
	// Modified reports that the work tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary, e.g. "go1.26.8".
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Placeholders for what a build does not record.
const (
	DevelVersion    = "(devel)"
	UnknownRevision = "unknown"
)

// Read returns the build information of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts Info from bi, which may be nil when the binary
// carries no build information.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Version: DevelVersion, Revision: UnknownRevision, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return i
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				i.Revision = s.Value
			}
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		i.Platform = goos + "/" + goarch
	}
	return i
}

// Format returns the line a version command prints for the program name,
// for example
//
//	xchat v0.4.0 (revision 0129f5b6..., 2026-12-07T18:00:00Z, modified) go1.26.8 linux/amd64
//	xchat (devel) (revision unknown) go1.26.8 linux/amd64
func (i Info) Format(name string) string {
	rev := "revision " + i.Revision
	if i.Time != "" {
		rev += ", " + i.Time
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s %s (%s) %s %s", name, i.Version, rev, i.GoVersion, i.Platform)
}
