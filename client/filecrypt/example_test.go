package filecrypt_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/xchat-im/xchat/client/filecrypt"
)

// A file's blob is made by reading a BlobReader and opened by writing it to
// a BlobWriter with the key, hash and size a file reference carries.
func Example() {
	const text = "hello, files"
	key, err := filecrypt.NewKey()
	if err != nil {
		panic(err)
	}
	r, err := filecrypt.NewBlobReader(key, strings.NewReader(text), int64(len(text)))
	if err != nil {
		panic(err)
	}
	var blob bytes.Buffer // in a client: the parts of blob-put
	if _, err := io.Copy(&blob, r); err != nil {
		panic(err)
	}
	hash := r.Sum()

	var out bytes.Buffer // in a client: a temporary file
	w, err := filecrypt.NewBlobWriter(key, hash, int64(len(text)), &out)
	if err != nil {
		panic(err)
	}
	if _, err := io.Copy(w, &blob); err != nil { // the parts of blob-get
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	fmt.Println(r.BlobSize(), out.String())
	// Output: 541 hello, files
}
