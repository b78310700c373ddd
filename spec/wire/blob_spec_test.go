package wire_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// commas writes n with thousands separators, as the specification does.
func commas(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestFilesSpecNumbers checks the sizes that spec/11-files.md states in
// sections 11.2 and 11.3 against EncryptedFileSize and PaddedBlobSize.
func TestFilesSpecNumbers(t *testing.T) {
	src, err := os.ReadFile("../11-files.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(src)), " ")
	blob := func(n uint64) uint64 { return wire.PaddedBlobSize(wire.EncryptedFileSize(n)) }
	// The largest file whose blob is the smallest one.
	var smallest uint64
	for blob(smallest+1) == wire.MinBlobSize {
		smallest++
	}
	// The largest bucket not above MaxBlobSize.
	var buckets []uint64
	largest := uint64(0)
	for n := uint64(1); n <= wire.MaxBlobSize; n = largest + 1 {
		b := wire.PaddedBlobSize(n)
		if b == 0 {
			break
		}
		if len(buckets) < 5 {
			buckets = append(buckets, b)
		}
		largest = b
	}
	var list []string
	for _, b := range buckets {
		list = append(list, fmt.Sprint(b))
	}
	for _, want := range []string{
		fmt.Sprintf("%d bytes for an empty file, %s bytes for a file of %s bytes, and %s bytes for the largest file",
			wire.EncryptedFileSize(0), commas(wire.EncryptedFileSize(wire.FileChunkSize)), commas(wire.FileChunkSize),
			commas(wire.EncryptedFileSize(wire.MaxFileSize))),
		fmt.Sprintf("Chunk i of the ciphertext starts at byte %s × i", commas(wire.FileChunkSize+wire.AEADTagLen)),
		fmt.Sprintf("buckets about 5%% apart: %s, …", strings.Join(list, ", ")),
		fmt.Sprintf("is %s bytes; every file", commas(largest)),
		fmt.Sprintf("an empty file (ciphertext %d bytes) and any file of up to %d bytes make a blob of %d bytes",
			wire.EncryptedFileSize(0), smallest, wire.MinBlobSize),
		fmt.Sprintf("a file of 1 MiB (ciphertext %s bytes) a blob of %s bytes",
			commas(wire.EncryptedFileSize(1<<20)), commas(blob(1<<20))),
		fmt.Sprintf("the largest file, 4 GiB, a blob of %s bytes", commas(blob(wire.MaxFileSize))),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("11-files.md does not say %q", want)
		}
	}
}
