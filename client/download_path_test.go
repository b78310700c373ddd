package client

import (
	"os"
	"path/filepath"
	"testing"
)

// The output of a download: the file's name in the current directory or
// in a given directory, or the path given; a name that could leave the
// directory is refused.
func TestDownloadPath(t *testing.T) {
	dir := t.TempDir()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, name, want string }{
		{"", "a.txt", filepath.Join(cwd, "a.txt")},
		{dir, "a.txt", filepath.Join(dir, "a.txt")},
		{filepath.Join(dir, "b.bin"), "a.txt", filepath.Join(dir, "b.bin")},
		{filepath.Join(dir, "b.bin"), "../x", filepath.Join(dir, "b.bin")},
	} {
		if got, err := downloadPath(c.out, c.name); err != nil || got != c.want {
			t.Errorf("downloadPath(%q, %q) = %q, %v; want %q", c.out, c.name, got, err, c.want)
		}
	}
	for _, name := range []string{"..", "../x", "a/b", `a\b`, "", "."} {
		for _, out := range []string{"", dir} {
			if got, err := downloadPath(out, name); err == nil {
				t.Errorf("downloadPath(%q, %q) = %q", out, name, got)
			}
		}
	}
	if got := partialPath(filepath.Join(dir, "b.bin")); got != filepath.Join(dir, ".b.bin.xchat-download") {
		t.Errorf("partial path %q", got)
	}
}
