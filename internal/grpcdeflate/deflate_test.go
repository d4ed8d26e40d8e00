package grpcdeflate

import (
	"bytes"
	"compress/zlib"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/encoding"
)

// TestRoundTripsWithPooledCodecs: messages of several sizes survive compression and
// decompression with writers and readers reused from the pools, and the bytes are the
// zlib format that gRPC core calls deflate.
func TestRoundTripsWithPooledCodecs(t *testing.T) {
	c := encoding.GetCompressor(Name)
	if c == nil {
		t.Fatal("deflate is not registered")
	}
	for i, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ferry "), 100_000), []byte(strings.Repeat("ab", 7))} {
		var wire bytes.Buffer
		w, err := c.Compress(&wire)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		z, err := zlib.NewReader(bytes.NewReader(wire.Bytes()))
		if err != nil {
			t.Fatalf("message %d: not zlib: %v", i, err)
		}
		if plain, err := io.ReadAll(z); err != nil || !bytes.Equal(plain, msg) {
			t.Fatalf("message %d: zlib reads %d bytes, %v; want %d", i, len(plain), err, len(msg))
		}
		r, err := c.Decompress(bytes.NewReader(wire.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: round trip gave %d bytes, %v; want %d", i, len(got), err, len(msg))
		}
	}
	if _, err := c.Decompress(strings.NewReader("not zlib")); err == nil {
		t.Error("Decompress accepted bytes that are not zlib")
	}
}
