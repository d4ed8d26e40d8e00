package remote

import (
	"context"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/netguard"
)

// TestGuardRefusesMetadataUpstreams: a config naming the metadata service as its
// upstream is refused at load, over REST and gRPC.
func TestGuardRefusesMetadataUpstreams(t *testing.T) {
	b := New(nil)
	b.SetGuard(&netguard.Policy{})
	for _, url := range []string{"http://169.254.169.254:80", "grpc://169.254.169.254:80", "http://[fd00:ec2::254]:80"} {
		in, err := b.Open(context.Background(), t.Name(), remoteConfig(url))
		if err == nil {
			in.Close()
			t.Errorf("upstream %s: opened", url)
			continue
		}
		if !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "url") {
			t.Errorf("upstream %s: %v, want a refusal naming the url parameter", url, err)
		}
	}
}

// TestGuardChecksResolvedNames: an upstream named by a host name is checked on the
// address it resolves to, when dialled: "localhost" is loopback, refused when private
// addresses are denied, served otherwise (REST and gRPC).
func TestGuardChecksResolvedNames(t *testing.T) {
	up := newFakeUpstream(t)
	for _, mk := range []func() string{up.restURL, up.grpcURL} {
		url := strings.Replace(mk(), "127.0.0.1", "localhost", 1)
		strict := New(nil)
		strict.SetGuard(&netguard.Policy{DenyPrivate: true})
		in := openInstance(t, strict, remoteConfig(url, "retries", "0", "timeout", "2s"))
		_, err := in.Execute(context.Background(), echoInput(1), []string{"y"})
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s with private denied: %v, want a refusal", url, err)
		}
		open := New(nil)
		open.SetGuard(&netguard.Policy{})
		in = openInstance(t, open, remoteConfig(url))
		if _, err := in.Execute(context.Background(), echoInput(1), []string{"y"}); err != nil {
			t.Errorf("%s by default: %v", url, err)
		}
	}
}
