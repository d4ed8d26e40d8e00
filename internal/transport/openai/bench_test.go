package openai

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkStreamTokens measures the edge's cost per streamed token: a chat stream of
// 256 one-token deltas over a real socket, read by a client to [DONE]. ns/token is the
// encoding, write and flush of one SSE chunk.
func BenchmarkStreamTokens(b *testing.B) {
	srv := serve(b, newTestHandler(newFakeBackend(), Options{}), 1<<20)
	const tokens = 256
	body := `{"model":"fake-many","max_tokens":256,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n < tokens*100 {
			b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
}

// BenchmarkDecodeChat measures decoding a typical chat body with sampling fields.
func BenchmarkDecodeChat(b *testing.B) {
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"Tell me about Go."}]}],
		"max_tokens":128,"temperature":0.7,"top_p":0.95,"stop":["\n\n"],"seed":1,"stream":true,"stream_options":{"include_usage":true},"top_k":40}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeChat(body); err != nil {
			b.Fatal(err)
		}
	}
}
