package objstore

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strings"
)

// crc64NVME is the table for CRC-64/NVME, the polynomial S3 names CRC64NVME, in the
// reversed form hash/crc64 takes (its init and final XOR are all ones, as crc64 does).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// reported is what the store said about one object's bytes in the response to a GET.
type reported struct {
	Size       int64  // Content-Length; -1 when absent
	ETag       string // without quotes
	ETagIsMD5  bool   // false for multipart uploads and SSE-KMS / SSE-C objects
	ContentMD5 string // base64, from a Content-MD5 header
	SHA256     string // base64, from x-amz-checksum-sha256
	SHA1       string // base64, from x-amz-checksum-sha1
	CRC32      string // base64, from x-amz-checksum-crc32
	CRC32C     string // base64, from x-amz-checksum-crc32c
	CRC64NVME  string // base64, from x-amz-checksum-crc64nvme
}

// check is one digest computed while the bytes stream to disk, and the value it must have.
type check struct {
	source string // where want came from: "ETag", "x-amz-checksum-sha256", ...
	algo   string
	h      hash.Hash
	want   []byte
}

// checksFor lists the digests that the reported values allow. A value that cannot be
// decoded is an error (the store's answer is malformed); a composite checksum of a
// multipart upload ("...-3") covers the parts, not the bytes, so it is skipped.
func checksFor(r reported) ([]*check, error) {
	var out []*check
	add := func(source, algo, value string, h hash.Hash, decode func(string) ([]byte, error)) error {
		if value == "" || strings.Contains(value, "-") {
			return nil
		}
		want, err := decode(value)
		if err != nil || len(want) != h.Size() {
			return fmt.Errorf("the store's %s %q is not a %s value", source, value, algo)
		}
		out = append(out, &check{source: source, algo: algo, h: h, want: want})
		return nil
	}
	b64 := base64.StdEncoding.DecodeString
	for _, c := range []struct {
		source, algo, value string
		h                   hash.Hash
		decode              func(string) ([]byte, error)
	}{
		{"ETag", "MD5", etagMD5(r), md5.New(), hex.DecodeString},
		{"Content-MD5", "MD5", r.ContentMD5, md5.New(), b64},
		{"x-amz-checksum-sha256", "SHA-256", r.SHA256, sha256.New(), b64},
		{"x-amz-checksum-sha1", "SHA-1", r.SHA1, sha1.New(), b64},
		{"x-amz-checksum-crc32", "CRC32", r.CRC32, crc32.NewIEEE(), b64},
		{"x-amz-checksum-crc32c", "CRC32C", r.CRC32C, crc32.New(crc32.MakeTable(crc32.Castagnoli)), b64},
		{"x-amz-checksum-crc64nvme", "CRC64NVME", r.CRC64NVME, crc64.New(crc64NVME), b64},
	} {
		if err := add(c.source, c.algo, c.value, c.h, c.decode); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// etagMD5 is the ETag when it is the MD5 of the bytes, else "".
func etagMD5(r reported) string {
	if !r.ETagIsMD5 || len(r.ETag) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(r.ETag); err != nil {
		return ""
	}
	return r.ETag
}

// verifier hashes the bytes written through it and checks them at the end.
type verifier struct {
	r      reported
	checks []*check
	n      int64
}

func newVerifier(r reported) (*verifier, error) {
	checks, err := checksFor(r)
	if err != nil {
		return nil, err
	}
	return &verifier{r: r, checks: checks}, nil
}

func (v *verifier) Write(p []byte) (int, error) {
	for _, c := range v.checks {
		c.h.Write(p)
	}
	v.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*verifier)(nil)

// verify compares the bytes seen with the size the listing gave and every check.
func (v *verifier) verify(listedSize int64) error {
	if v.r.Size >= 0 && v.n != v.r.Size {
		return fmt.Errorf("size mismatch: got %d bytes, Content-Length says %d", v.n, v.r.Size)
	}
	if v.n != listedSize {
		return fmt.Errorf("size mismatch: got %d bytes, the listing says %d", v.n, listedSize)
	}
	for _, c := range v.checks {
		got := c.h.Sum(nil)
		if !bytes.Equal(got, c.want) {
			return fmt.Errorf("checksum mismatch: the store's %s says %s %s, the downloaded bytes have %s",
				c.source, c.algo, show(c, c.want), show(c, got))
		}
	}
	return nil
}

// verifiedBy names the checks that passed, for the log ("size" alone for a multipart
// object the store gave no checksum for).
func (v *verifier) verifiedBy() string {
	by := []string{"size"}
	for _, c := range v.checks {
		by = append(by, c.source)
	}
	return strings.Join(by, ", ")
}

// show prints a digest the way its source does: hex for the ETag, base64 otherwise.
func show(c *check, sum []byte) string {
	if c.source == "ETag" {
		return hex.EncodeToString(sum)
	}
	return base64.StdEncoding.EncodeToString(sum)
}
