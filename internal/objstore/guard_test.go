package objstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/netguard"
)

// TestEndpointIsGuarded: with a dial check, an endpoint on the metadata address is never
// connected to, and one the check accepts (the test store on 127.0.0.1) still syncs.
func TestEndpointIsGuarded(t *testing.T) {
	guard := &netguard.Policy{}
	s, err := New(Options{URL: "s3://models/repo", CacheDir: t.TempDir(), Endpoint: "http://169.254.169.254:80",
		AccessKeyID: "k", SecretAccessKey: "s", Timeout: 10 * time.Second, DialControl: guard.Control})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Sync against the metadata address: %v, want a refusal", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refused after %s: it was dialled", d)
	}
	srv := newStore(t)
	srv.Put(t, "repo/m/1/model.onnx", []byte("m 1"))
	ok, err := New(Options{URL: "s3://models/repo", CacheDir: t.TempDir(), Endpoint: srv.URL,
		AccessKeyID: testKey, SecretAccessKey: "secret", Timeout: 10 * time.Second, DialControl: guard.Control})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, ok)
}
