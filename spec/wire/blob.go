package wire

import (
	"math/big"
	"sync"
)

// Blob limits and sizes of spec/11-files.md.
const (
	BlobIDLen      = 16             // bytes of a blob identifier
	BlobPartSize   = 512 << 10      // bytes of every part of a blob but the last
	MaxBlobSize    = 5 << 30        // bytes of the largest padded blob
	MaxFileSize    = 4 << 30        // bytes of the largest plaintext file
	MinBlobSize    = 541            // the smallest padded blob
	FileChunkSize  = 64 << 10       // plaintext bytes of every encrypted chunk but the last
	FileKeyLen     = 32             // bytes of a file key
	FileHashLen    = 32             // bytes of the SHA-256 of a blob
	MaxFileName    = 255            // bytes of a file name
	MaxMediaType   = 127            // bytes of a media type
	AutoFetchLimit = 1 << 20        // plaintext bytes a client may download without being asked
	ContextFileKey = "xchat/1 file" // HKDF info of the chunk key
	MaxUnfinished  = 8              // unfinished uploads of one account (default policy)
	BlobQuota      = 10 << 30       // stored and reserved blob bytes of one account (default policy)
	UploadLifetime = 24 * 3600      // seconds an unfinished upload is kept (default policy)
	BlobRetention  = 30 * 24 * 3600 // seconds a finished blob is kept (default policy)
)

// BlobCreate starts an upload of a padded blob of Size bytes to the
// authenticated account's homeserver.
type BlobCreate struct {
	Header
	Size uint64 `cbor:"1,keyasint"`
}

// BlobCreateOK answers BlobCreate with the new blob's identifier and when
// the server drops it unless it is finished (Unix milliseconds).
type BlobCreateOK struct {
	Header
	ID      []byte `cbor:"1,keyasint"`
	Expires uint64 `cbor:"2,keyasint"`
}

// BlobPut uploads part Index of an unfinished blob: BlobPartSize bytes, or
// what is left for the last part.
type BlobPut struct {
	Header
	ID    []byte `cbor:"1,keyasint"`
	Index uint64 `cbor:"2,keyasint"`
	Data  []byte `cbor:"3,keyasint"`
}

// BlobPutOK answers BlobPut once the part is durable, with the length of
// the blob's durable prefix: the bytes of the parts from 0 up to the first
// part not received.
type BlobPutOK struct {
	Header
	Received uint64 `cbor:"1,keyasint"`
}

// BlobStatus asks for the state of one of the account's blobs.
type BlobStatus struct {
	Header
	ID []byte `cbor:"1,keyasint"`
}

// BlobStatusOK answers BlobStatus.
type BlobStatusOK struct {
	Header
	Size     uint64 `cbor:"1,keyasint"`
	Received uint64 `cbor:"2,keyasint"` // durable prefix, as in BlobPutOK
	Complete bool   `cbor:"3,keyasint"`
	Expires  uint64 `cbor:"4,keyasint"` // Unix milliseconds
}

// BlobFinish makes a fully received blob readable; retention starts.
type BlobFinish struct {
	Header
	ID []byte `cbor:"1,keyasint"`
}

// BlobFinishOK answers BlobFinish with the end of the blob's retention
// (Unix milliseconds).
type BlobFinishOK struct {
	Header
	Expires uint64 `cbor:"1,keyasint"`
}

// BlobGet reads a range of a finished blob of Domain, through the client's
// own homeserver.
type BlobGet struct {
	Header
	Domain string `cbor:"1,keyasint"`
	ID     []byte `cbor:"2,keyasint"`
	Offset uint64 `cbor:"3,keyasint"`
	Length uint64 `cbor:"4,keyasint"`
}

// BlobGetOK answers BlobGet (and FedBlobGet) with the bytes from Offset,
// Length of them or fewer at the end of the blob, and the blob's size.
type BlobGetOK struct {
	Header
	Data []byte `cbor:"1,keyasint"`
	Size uint64 `cbor:"2,keyasint"`
}

// FedBlobGet reads a range of a finished blob of the listener's domain on
// behalf of a client of the origin (spec/08-federation.md).
type FedBlobGet struct {
	Header
	ID     []byte `cbor:"1,keyasint"`
	Offset uint64 `cbor:"2,keyasint"`
	Length uint64 `cbor:"3,keyasint"`
}

func validBlobID(id []byte) error {
	if len(id) != BlobIDLen {
		return Errorf(CodeMalformed, "blob identifier of %d bytes", len(id))
	}
	return nil
}

func (r *BlobCreate) Validate() error {
	if r.Size == 0 {
		return Errorf(CodeMalformed, "blob size 0")
	}
	return nil
}

func (r *BlobPut) Validate() error {
	if err := validBlobID(r.ID); err != nil {
		return err
	}
	if len(r.Data) == 0 || len(r.Data) > BlobPartSize {
		return Errorf(CodeMalformed, "part of %d bytes", len(r.Data))
	}
	return nil
}

func (r *BlobStatus) Validate() error { return validBlobID(r.ID) }
func (r *BlobFinish) Validate() error { return validBlobID(r.ID) }

// Validate checks the CDDL bounds before the domain name, as
// spec/03-framing.md section 3.3.1 step 4 orders them.
func (r *BlobGet) Validate() error {
	if err := validBlobID(r.ID); err != nil {
		return err
	}
	if err := validRange(r.Length); err != nil {
		return err
	}
	return ValidateDomain(r.Domain)
}

func (r *FedBlobGet) Validate() error {
	if err := validBlobID(r.ID); err != nil {
		return err
	}
	return validRange(r.Length)
}

func validRange(length uint64) error {
	if length == 0 || length > BlobPartSize {
		return Errorf(CodeMalformed, "range of %d bytes", length)
	}
	return nil
}

// BlobParts returns the number of parts of a blob of size bytes.
func BlobParts(size uint64) uint64 { return (size + BlobPartSize - 1) / BlobPartSize }

// BlobPartLen returns the length of part index of a blob of size bytes, or
// 0 when the blob has no such part.
func BlobPartLen(size, index uint64) uint64 {
	if index >= BlobParts(size) {
		return 0
	}
	return min(BlobPartSize, size-index*BlobPartSize)
}

// EncryptedFileSize returns the ciphertext length of a file of n plaintext
// bytes: n plus one AEAD tag per chunk, an empty file being one chunk.
func EncryptedFileSize(n uint64) uint64 {
	chunks := max((n+FileChunkSize-1)/FileChunkSize, 1)
	return n + chunks*AEADTagLen
}

// blobBuckets returns floor(1.05^k) for k = 0, 1, ... up to the first
// value above MaxBlobSize, computed exactly once.
var blobBuckets = sync.OnceValue(func() []uint64 {
	var v []uint64
	num, den, q := big.NewInt(1), big.NewInt(1), new(big.Int)
	for {
		q.Quo(num, den)
		v = append(v, q.Uint64())
		if q.Uint64() > MaxBlobSize {
			return v
		}
		num.Mul(num, big.NewInt(21))
		den.Mul(den, big.NewInt(20))
	}
})

// PaddedBlobSize returns the padded size of a blob whose content is n bytes
// (spec/11-files.md section 11.3): max(MinBlobSize, floor(1.05^k)) for the
// smallest k with 21^k ≥ n·20^k, computed exactly. It returns 0 when n is 0
// or the bucket would exceed MaxBlobSize.
func PaddedBlobSize(n uint64) uint64 {
	if n == 0 || n > MaxBlobSize {
		return 0
	}
	for _, b := range blobBuckets() {
		if b >= n {
			if b > MaxBlobSize {
				return 0
			}
			return max(b, MinBlobSize)
		}
	}
	return 0
}
