package inferlog

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestAppendBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		prefix := []byte(`"x":"`)
		got := appendBase64(bytes.Clone(prefix), src)
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: %q, want %q", n, got, want)
		}
	}
}

func FuzzAppendBase64(f *testing.F) {
	f.Add([]byte("any carnal pleasure"), []byte("ab"))
	f.Fuzz(func(t *testing.T, src, prefix []byte) {
		got := appendBase64(bytes.Clone(prefix), src)
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: %q, want %q", src, got, want)
		}
	})
}

// BenchmarkBase64 compares appendBase64 with the standard library's encoder on a
// 256-float tensor (1 KiB), in one run:
//
//	go test -run=NONE -bench=Base64 ./internal/monitor/inferlog/
func BenchmarkBase64(b *testing.B) {
	src := make([]byte, 1024)
	for i := range src {
		src[i] = byte(i * 7)
	}
	buf := make([]byte, 0, 2048)
	var std, ours float64
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			buf = base64.StdEncoding.AppendEncode(buf[:0], src)
		}
		std = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("appendBase64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			buf = appendBase64(buf[:0], src)
		}
		ours = float64(b.Elapsed()) / float64(b.N)
		if std > 0 {
			b.ReportMetric(std/ours, "x_stdlib")
		}
	})
}
