package inferlog

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
)

// pairs[v] is the two standard-alphabet base64 characters of the 12-bit value v,
// first character in the low byte.
var pairs = func() (t [4096]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v := range t {
		t[v] = uint16(alphabet[v>>6]) | uint16(alphabet[v&63])<<8
	}
	return t
}()

// appendBase64 appends the standard (padded) base64 of src to dst, as
// base64.StdEncoding.AppendEncode does, faster: two table reads per three bytes
// instead of four. The inference log encodes every logged tensor with
// it, and at 100% sampling of a 256-float model that was a third of the log's CPU.
func appendBase64(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	start := len(dst)
	dst = dst[:start+n]
	out := dst[start:]
	i, o := 0, 0
	// Eight source bytes read at once yield six (eight characters): stop while eight
	// remain readable.
	for ; i+8 <= len(src) && o+8 <= len(out); i, o = i+6, o+8 {
		v := binary.BigEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(out[o:], uint64(pairs[v>>52])|uint64(pairs[v>>40&0xfff])<<16|
			uint64(pairs[v>>28&0xfff])<<32|uint64(pairs[v>>16&0xfff])<<48)
	}
	base64.StdEncoding.Encode(out[o:], src[i:])
	return dst
}
