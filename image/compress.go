package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Compression names as stored in Image.Compression.
const (
	CompressionNone  = "none"
	CompressionGzip  = "gzip"
	CompressionXz    = "xz"
	CompressionZstd  = "zstd"
	CompressionBzip2 = "bzip2"
)

const (
	// Reads from the caller and copies into files use buffers this big: fewer syscalls
	// and fewer wake-ups of the decompressor than the 32 KiB io.Copy default.
	bufSize = 1 << 20
	// zstd frames may ask for a window of up to 3.75 TiB; 128 MiB is what zstd --long
	// uses at most by default, and anything above is a memory exhaustion attempt.
	zstdMaxWindow = 128 << 20
	tarBlock      = 512
	// corruptProbe bounds how much more is decompressed after a tar error to see
	// whether the compressed stream is at fault.
	corruptProbe = 64 << 20
)

// input is the caller's reader as the import sees it: it hashes and counts every byte
// (Digest and progress are of the input as given), stops at cancellation, and keeps
// the first read error so a failure surfacing later in tar or a decompressor is
// blamed on the right stage. pgzip reads it from its own goroutine.
type input struct {
	ctx  context.Context
	r    io.Reader
	hash hash.Hash
	n    atomic.Int64

	mu  sync.Mutex
	err error
}

func (in *input) Read(p []byte) (int, error) {
	if err := in.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := in.r.Read(p)
	if n > 0 {
		in.hash.Write(p[:n])
		in.n.Add(int64(n))
	}
	if err != nil && err != io.EOF {
		in.mu.Lock()
		if in.err == nil {
			in.err = err
		}
		in.mu.Unlock()
	}
	return n, err
}

func (in *input) readErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// decoded wraps a decompressor to remember its first error, for the same reason.
type decoded struct {
	r   io.Reader
	err error
}

func (d *decoded) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && d.err == nil {
		d.err = err
	}
	return n, err
}

// archive is the pipeline from the caller's bytes to tar entries.
type archive struct {
	ctx         context.Context
	in          *input
	raw         *bufio.Reader
	compression string
	dec         *decoded // nil for a plain tar
	closeDec    func()
	closed      bool
	tr          *tar.Reader
}

// openArchive detects the compression from magic bytes (never a file name: the CLI
// may read stdin) and checks that what comes out is a tar archive before anything is
// written.
func openArchive(ctx context.Context, r io.Reader) (*archive, error) {
	a := &archive{ctx: ctx, in: &input{ctx: ctx, r: r, hash: sha256.New()}}
	a.raw = bufio.NewReaderSize(a.in, bufSize)
	head, err := a.raw.Peek(tarBlock)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, a.readErr(err)
	}
	a.compression = sniff(head)
	if a.compression == CompressionNone {
		if err := checkTar(head, "input"); err != nil {
			return nil, err
		}
		a.tr = tar.NewReader(a.raw)
		return a, nil
	}
	var dec io.Reader
	switch a.compression {
	case CompressionGzip:
		// pgzip decompresses ahead in its own goroutine, so inflating overlaps with
		// the file system work of the unpack, as with `tar -xzf` piping from gzip;
		// its inflate (klauspost/compress/flate) is also faster than the standard
		// library's.
		z, err := pgzip.NewReaderN(a.raw, bufSize, 8)
		if err != nil {
			return nil, a.decodeErr(err)
		}
		dec, a.closeDec = z, func() { z.Close() }
	case CompressionXz:
		z, err := xz.NewReader(a.raw)
		if err != nil {
			return nil, a.decodeErr(err)
		}
		dec = z
	case CompressionZstd:
		z, err := zstd.NewReader(a.raw, zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, a.decodeErr(err)
		}
		dec, a.closeDec = z, z.Close
	case CompressionBzip2:
		dec = bzip2.NewReader(a.raw)
	}
	a.dec = &decoded{r: dec}
	first := make([]byte, tarBlock)
	n, err := io.ReadFull(a.dec, first)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		a.close()
		return nil, a.readErr(err)
	}
	if err := checkTar(first[:n], a.compression+" data"); err != nil {
		a.close()
		return nil, err
	}
	a.tr = tar.NewReader(io.MultiReader(bytes.NewReader(first), a.dec))
	return a, nil
}

func (a *archive) close() {
	a.closed = true
	if a.closeDec != nil {
		a.closeDec()
		a.closeDec = nil
	}
}

// finish reads the input to its end and returns its digest: the digest is of all of
// it, and gzip, xz and zstd verify their checksums only at the end of a stream,
// after the tar end marker.
func (a *archive) finish() (digest string, err error) {
	if a.dec != nil {
		if _, err := io.CopyBuffer(io.Discard, a.dec, make([]byte, 64<<10)); err != nil {
			return "", a.readErr(err)
		}
	}
	// pgzip and zstd read ahead from their own goroutines: stop them before reading
	// what they leave.
	a.close()
	if _, err := io.CopyBuffer(io.Discard, a.raw, make([]byte, 64<<10)); err != nil {
		return "", a.readErr(err)
	}
	return "sha256:" + hex.EncodeToString(a.in.hash.Sum(nil)), nil
}

// readErr says which stage an error reading entries came from: cancellation, the
// caller's reader, the decompressor (corrupt or truncated data) or tar itself.
func (a *archive) readErr(err error) error {
	if cerr := a.ctx.Err(); cerr != nil {
		return cerr
	}
	if ierr := a.in.readErr(); ierr != nil {
		return fmt.Errorf("read input: %w", ierr)
	}
	if a.dec != nil && a.dec.err == nil && !a.closed {
		// Corrupt compressed data may inflate to garbage before its checksum, at the
		// end, says so; "corrupt gzip data" tells the user more than a bad tar header.
		io.CopyBuffer(io.Discard, io.LimitReader(a.dec, corruptProbe), make([]byte, 64<<10))
	}
	if a.dec != nil && a.dec.err != nil {
		return a.decodeErr(a.dec.err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badArchive("truncated tar archive: %v", io.ErrUnexpectedEOF)
	}
	// Besides tar.ErrHeader, archive/tar reports malformed numeric and PAX fields with
	// ad hoc errors; whatever is left is about the bytes, since it does no other I/O.
	return badArchive("corrupt tar archive: %s", oneLine(err.Error()))
}

func (a *archive) decodeErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badArchive("truncated %s data: %v", a.compression, io.ErrUnexpectedEOF)
	}
	return badArchive("corrupt %s data: %s", a.compression, oneLine(err.Error()))
}

var magics = []struct {
	magic, compression string
}{
	{"\x1f\x8b", CompressionGzip},
	{"\xfd7zXZ\x00", CompressionXz},
	{"\x28\xb5\x2f\xfd", CompressionZstd},
}

func sniff(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return m.compression
		}
	}
	// "BZh" and a block size digit, then the magic of a block or of the end of stream.
	if len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' &&
		(bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
			bytes.Equal(head[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})) {
		return CompressionBzip2
	}
	return CompressionNone
}

// checkTar accepts a first block with the ustar magic at offset 257 (POSIX and GNU),
// or an old-style (v7) header whose checksum is right.
func checkTar(head []byte, what string) error {
	switch {
	case len(head) == 0:
		return badArchive("not a tar archive (%s is empty)", what)
	case len(head) < tarBlock:
		return badArchive("not a tar archive (%s is %d bytes, shorter than one tar header; %s)", what, len(head), describe(head))
	case bytes.Count(head[:tarBlock], []byte{0}) == tarBlock:
		return badArchive("empty tar archive (%s starts with an end-of-archive block)", what)
	case bytes.HasPrefix(head[257:], []byte("ustar")):
		return nil
	case tarChecksumOK(head[:tarBlock]):
		return nil
	}
	return badArchive("not a tar archive (%s %s)", what, describe(head))
}

func tarChecksumOK(h []byte) bool {
	field := strings.Trim(string(h[148:156]), " \x00")
	want, err := strconv.ParseUint(field, 8, 32)
	if err != nil {
		return false
	}
	// Old tars summed signed chars; both sums are accepted, as GNU tar does.
	var unsigned uint64
	var signed int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += uint64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || int64(want) == signed
}

// describe names what the input seems to be instead, so a user who fed a zip, a .deb
// or a saved HTML error page sees that at once.
func describe(head []byte) string {
	known := []struct{ magic, what string }{
		{"PK\x03\x04", "a zip archive"},
		{"!<arch>\n", "an ar archive (a .deb?)"},
		{"\x7fELF", "an ELF executable"},
		{"\x04\x22\x4d\x18", "lz4 data, which is not supported"},
		{"LZIP", "lzip data, which is not supported"},
		{"hsqs", "a squashfs image"},
		{"QFI\xfb", "a qcow2 disk image"},
		{"<!DOCTYPE", "an HTML page"},
		{"<html", "an HTML page"},
		{"BZh", "bzip2 data with a bad header"},
	}
	n := min(len(head), 8)
	s := "starts with " + strconv.Quote(string(head[:n]))
	for _, k := range known {
		if bytes.HasPrefix(bytes.ToLower(head), bytes.ToLower([]byte(k.magic))) {
			return s + ", " + k.what
		}
	}
	return s
}

// oneLine keeps library error texts to one line: every error of this package is.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
