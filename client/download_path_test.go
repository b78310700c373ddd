package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
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
	// The temporary file is named after the file, not its name: two
	// files of one name do not share it, and a long name fits.
	id := []byte{0xab, 0xcd}
	if got := partialPath(filepath.Join(dir, "b.bin"), id); got != filepath.Join(dir, ".xchat-abcd.download") {
		t.Errorf("partial path %q", got)
	}
}

// A saved name shows what it is: characters that change how it displays
// are replaced.
func TestSavedName(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":            "photo.jpg",
		"invoice\u202egpj.exe": "invoice_gpj.exe",
		".xchat-abcd.download": "_.xchat-abcd.download",
		"a\u2028b\u2029c":      "a_b_c",
		"zero\u200bwidth":      "zero_width",
		"ünïcödé 文件.txt":       "ünïcödé 文件.txt",
	} {
		if got := savedName(in); got != want {
			t.Errorf("savedName(%q) = %q, want %q", in, got, want)
		}
	}
	dir := t.TempDir()
	if got, err := downloadPath(dir, "x\u202etxt.exe"); err != nil || got != filepath.Join(dir, "x_txt.exe") {
		t.Errorf("download path %q, %v", got, err)
	}
}

// The media type sent: given, else from the extension, else
// application/octet-stream; lower case, without parameters.
func TestMediaType(t *testing.T) {
	for _, c := range []struct{ given, name, want string }{
		{"", "notes.txt", "text/plain"},
		{"", "photo.JPG", "image/jpeg"},
		{"", "data.unknown-ext", "application/octet-stream"},
		{"", "noext", "application/octet-stream"},
		{"Text/HTML; charset=utf-8", "x.bin", "text/html"},
		{"application/x-custom", "x.txt", "application/x-custom"},
	} {
		if got, err := mediaType(c.given, c.name); err != nil || got != c.want {
			t.Errorf("mediaType(%q, %q) = %q, %v; want %q", c.given, c.name, got, err, c.want)
		}
	}
	for _, bad := range []string{"text", "a b/c", "/"} {
		if got, err := mediaType(bad, "x"); err == nil {
			t.Errorf("mediaType(%q) = %q", bad, got)
		}
	}
}

// A file's identifier covers the whole reference: another key, hash or
// domain with the same blob identifier is another file.
func TestFileIDCoversTheReference(t *testing.T) {
	ref := wire.FileRef{Domain: "a.test", BlobID: make([]byte, 16), Key: make([]byte, 32), Hash: make([]byte, 32)}
	id := FileID(&ref)
	if len(id) != 32 || FileID(&ref) != id {
		t.Fatalf("FileID = %q", id)
	}
	for name, change := range map[string]func(r *wire.FileRef){
		"key":    func(r *wire.FileRef) { r.Key = append([]byte{1}, r.Key[1:]...) },
		"hash":   func(r *wire.FileRef) { r.Hash = append([]byte{1}, r.Hash[1:]...) },
		"domain": func(r *wire.FileRef) { r.Domain = "b.test" },
	} {
		other := ref
		change(&other)
		if FileID(&other) == id {
			t.Errorf("another %s, the same identifier", name)
		}
	}
	if _, err := ParseFileID(id); err != nil {
		t.Fatal(err)
	}
}
