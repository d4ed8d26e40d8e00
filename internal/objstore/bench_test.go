package objstore

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/objstore/s3test"
)

// BenchmarkSyncVsPlainGet downloads one 32 MiB model file through a full sync (listing,
// MD5 check against the ETag, temporary file, fsync, rename, manifest) and through a
// bare HTTP GET read to nowhere, alternately in one run; sync/get is the cost of
// verifying and placing the bytes.
func BenchmarkSyncVsPlainGet(b *testing.B) {
	srv := s3test.New(b, "models")
	data := make([]byte, 32<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	srv.Put(b, "repo/m/1/model.onnx", data)
	client := &http.Client{Timeout: time.Minute}
	var syncT, getT time.Duration
	for b.Loop() {
		start := time.Now()
		s, err := New(Options{URL: "s3://models/repo", CacheDir: b.TempDir(), Endpoint: srv.URL, AccessKeyID: "k", SecretAccessKey: "s"})
		if err != nil {
			b.Fatal(err)
		}
		if refused, err := s.Sync(context.Background()); err != nil || len(refused) != 0 {
			b.Fatal(err, refused)
		}
		syncT += time.Since(start)

		start = time.Now()
		resp, err := client.Get(srv.URL + "/models/repo/m/1/model.onnx")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
		getT += time.Since(start)
	}
	client.CloseIdleConnections()
	mib := float64(len(data)) / (1 << 20)
	b.ReportMetric(mib/syncT.Seconds()*float64(b.N), "sync-MiB/s")
	b.ReportMetric(mib/getT.Seconds()*float64(b.N), "get-MiB/s")
	b.ReportMetric(syncT.Seconds()/getT.Seconds(), "sync/get")
}

// BenchmarkSyncUnchanged is one poll of a 200-model store where nothing changed: a
// listing and a stat per file, no download.
func BenchmarkSyncUnchanged(b *testing.B) {
	srv := s3test.New(b, "models")
	for i := range 200 {
		srv.Put(b, fmt.Sprintf("repo/m%03d/config.pbtxt", i), []byte("config"))
		srv.Put(b, fmt.Sprintf("repo/m%03d/1/model.onnx", i), []byte("model bytes"))
	}
	s, err := New(Options{URL: "s3://models/repo", CacheDir: b.TempDir(), Endpoint: srv.URL, AccessKeyID: "k", SecretAccessKey: "s"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if st := s.Stats(); st.Downloads != 400 {
		b.Fatalf("downloads %d, want 400 (first sync only)", st.Downloads)
	}
}
