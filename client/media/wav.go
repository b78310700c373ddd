package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxWAVSamples bounds the audio ReadWAV accepts: one hour at 48 kHz.
const MaxWAVSamples = Rate * 3600

// maxFmtChunk bounds the size of a WAV fmt chunk ReadWAV reads.
const maxFmtChunk = 1024

// ErrWAV is wrapped by the errors of ReadWAV for input that is not a
// well-formed RIFF/WAVE file (bad header, truncated chunk, no fmt or data
// chunk, too long).
var ErrWAV = errors.New("media: malformed WAV")

// ErrWAVFormat is wrapped by the errors of ReadWAV for a well-formed WAV
// file whose audio is not 48 kHz mono 16-bit PCM; errors.As finds the
// *FormatError with the details.
var ErrWAVFormat = errors.New("media: unsupported WAV format")

// FormatError describes the audio format of a WAV file ReadWAV does not
// read. Format is the WAV format tag (1 for PCM, 3 for IEEE float, the
// sub-format's tag for an extensible file).
type FormatError struct {
	Format   int
	Channels int
	Rate     int
	Bits     int
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("media: WAV audio is format %d, %d channel(s), %d Hz, %d bits; want PCM (format 1), mono, %d Hz, 16 bits",
		e.Format, e.Channels, e.Rate, e.Bits, Rate)
}

// Is makes errors.Is(err, ErrWAVFormat) hold for a *FormatError.
func (e *FormatError) Is(target error) bool { return target == ErrWAVFormat }

// The GUID tail of WAVE_FORMAT_EXTENSIBLE sub-formats (after the 2-byte tag).
var extensibleGUIDTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
)

// ReadWAV reads a WAV file of 48 kHz mono 16-bit PCM (plain or
// WAVE_FORMAT_EXTENSIBLE), skipping any other chunks (LIST, fact, …). A
// data chunk cut short, or with the streaming size 0xFFFFFFFF, is read to
// the end of r. Other formats give a *FormatError (ErrWAVFormat), broken
// files an error wrapping ErrWAV.
func ReadWAV(r io.Reader) (*PCM, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: RIFF header: %v", ErrWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrWAV)
	}
	var fe *FormatError
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: no data chunk: %v", ErrWAV, err)
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if size < 16 || size > maxFmtChunk {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrWAV, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("%w: fmt chunk: %v", ErrWAV, err)
			}
			f, err := parseFmt(b[:size])
			if err != nil {
				return nil, err
			}
			fe = f
		case "data":
			if fe == nil {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrWAV)
			}
			if fe.Format != wavFormatPCM || fe.Channels != 1 || fe.Rate != Rate || fe.Bits != 16 {
				return nil, fe
			}
			return readData(r, size)
		default:
			if _, err := io.CopyN(io.Discard, r, int64(size)+int64(size%2)); err != nil {
				return nil, fmt.Errorf("%w: %q chunk: %v", ErrWAV, id, err)
			}
		}
	}
}

// parseFmt reads the fields of a fmt chunk of at least 16 bytes.
func parseFmt(b []byte) (*FormatError, error) {
	f := &FormatError{
		Format:   int(binary.LittleEndian.Uint16(b[0:2])),
		Channels: int(binary.LittleEndian.Uint16(b[2:4])),
		Rate:     int(binary.LittleEndian.Uint32(b[4:8])),
		Bits:     int(binary.LittleEndian.Uint16(b[14:16])),
	}
	blockAlign := int(binary.LittleEndian.Uint16(b[12:14]))
	if f.Format == wavFormatExtensible {
		if len(b) < 40 {
			return nil, fmt.Errorf("%w: extensible fmt chunk of %d bytes", ErrWAV, len(b))
		}
		if !bytes.Equal(b[26:40], extensibleGUIDTail[:]) {
			f.Format = -1
		} else {
			f.Format = int(binary.LittleEndian.Uint16(b[24:26]))
		}
	}
	if f.Format == wavFormatPCM && f.Channels == 1 && f.Bits == 16 && blockAlign != 2 {
		return nil, fmt.Errorf("%w: block align %d for mono 16-bit", ErrWAV, blockAlign)
	}
	return f, nil
}

// readData reads the samples of a data chunk of the given declared size.
func readData(r io.Reader, size uint32) (*PCM, error) {
	const maxBytes = 2 * MaxWAVSamples
	n := int64(size)
	if size == 0xFFFFFFFF || n > maxBytes {
		n = maxBytes + 1
	}
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("%w: data chunk: %v", ErrWAV, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: more than %d samples", ErrWAV, MaxWAVSamples)
	}
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return &PCM{Rate: Rate, Samples: s}, nil
}

// WriteWAV writes p as a WAV file of mono 16-bit PCM at p.Rate (0 means
// Rate).
func WriteWAV(w io.Writer, p *PCM) error {
	rate := p.Rate
	if rate == 0 {
		rate = Rate
	}
	if rate < 0 || rate > 1<<20 {
		return fmt.Errorf("media: WAV rate %d", rate)
	}
	dataLen := 2 * len(p.Samples)
	if int64(dataLen)+36 > 0xFFFFFFFF {
		return fmt.Errorf("media: %d samples do not fit a WAV file", len(p.Samples))
	}
	b := make([]byte, 44+dataLen)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+dataLen))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(dataLen))
	for i, s := range p.Samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("media: write WAV: %w", err)
	}
	return nil
}

// ReadWAVFile reads the WAV file at path (see ReadWAV).
func ReadWAVFile(path string) (*PCM, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	p, err := ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// WriteWAVFile writes p to a WAV file at path (see WriteWAV), replacing
// any file there.
func WriteWAVFile(path string, p *PCM) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := WriteWAV(f, p); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}
