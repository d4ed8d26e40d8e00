package objstore

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
)

// b64 is the S3 form of a checksum: its big-endian bytes in base64.
func b64(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

func be32(v uint32) string { return b64(binary.BigEndian.AppendUint32(nil, v)) }
func be64(v uint64) string { return b64(binary.BigEndian.AppendUint64(nil, v)) }

// The expected digests of "123456789" are the check values of the CRC catalogue and of
// md5sum, sha1sum and sha256sum, not values computed by this code.
func TestVerify(t *testing.T) {
	const data = "123456789"
	const md5Hex = "25f9e794323b453885f5181f1b624d0b"
	const sha256B64 = "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="
	for _, tc := range []struct {
		name    string
		r       reported
		wantErr string
		wantBy  string
	}{
		{"etag md5", reported{Size: 9, ETag: md5Hex, ETagIsMD5: true}, "", "size, ETag"},
		{"multipart etag is not an md5", reported{Size: 9, ETag: "d41d8cd98f00b204e9800998ecf8427e-2"}, "", "size"},
		{"kms etag is not an md5", reported{Size: 9, ETag: "00000000000000000000000000000000"}, "", "size"},
		{"content-md5", reported{Size: 9, ContentMD5: "JfnnlDI7RTiF9RgfG2JNCw=="}, "", "size, Content-MD5"},
		{"sha256", reported{Size: 9, SHA256: sha256B64}, "", "size, x-amz-checksum-sha256"},
		{"sha1", reported{Size: 9, SHA1: "98O8HYCOBHMq32eZZczDTKeuNEE="}, "", "size, x-amz-checksum-sha1"},
		{"crc32", reported{Size: 9, CRC32: be32(0xcbf43926)}, "", "size, x-amz-checksum-crc32"},
		{"crc32c", reported{Size: 9, CRC32C: be32(0xe3069283)}, "", "size, x-amz-checksum-crc32c"},
		{"crc64nvme", reported{Size: 9, CRC64NVME: be64(0xae8b14860a799888)}, "", "size, x-amz-checksum-crc64nvme"},
		{"composite checksum of parts is skipped", reported{Size: 9, SHA256: "abc=-3"}, "", "size"},
		{"etag mismatch", reported{Size: 9, ETag: "0123456789abcdef0123456789abcdef", ETagIsMD5: true},
			"checksum mismatch: the store's ETag says MD5 0123456789abcdef0123456789abcdef, the downloaded bytes have " + md5Hex, ""},
		{"sha256 mismatch", reported{Size: 9, SHA256: b64(make([]byte, 32))},
			"checksum mismatch: the store's x-amz-checksum-sha256 says SHA-256 " + b64(make([]byte, 32)) + ", the downloaded bytes have " + sha256B64, ""},
		{"crc32c mismatch", reported{Size: 9, CRC32C: be32(1)}, "checksum mismatch: the store's x-amz-checksum-crc32c says CRC32C AAAAAQ==", ""},
		{"short body", reported{Size: 10}, "size mismatch: got 9 bytes, Content-Length says 10", ""},
		{"malformed checksum", reported{Size: 9, SHA256: "not base64!"}, `the store's x-amz-checksum-sha256 "not base64!" is not a SHA-256 value`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVerifier(tc.r)
			if err == nil {
				v.Write([]byte(data[:4]))
				v.Write([]byte(data[4:]))
				err = v.verify(9)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("verify(%+v) err = %v, want it to contain %q", tc.r, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("verify(%+v): %v", tc.r, err)
			}
			if got := v.verifiedBy(); got != tc.wantBy {
				t.Errorf("verified by %q, want %q", got, tc.wantBy)
			}
		})
	}
}

func TestVerifyAgainstListedSize(t *testing.T) {
	v, err := newVerifier(reported{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	v.Write([]byte("12345"))
	if err := v.verify(6); err == nil || err.Error() != "size mismatch: got 5 bytes, the listing says 6" {
		t.Fatalf("verify = %v, want the listing's size named", err)
	}
}
