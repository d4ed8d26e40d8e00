package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/router"
)

// versionedLLM answers "v<version>" and lets a test hold the requests to one version.
type versionedLLM struct {
	llm.Backend
	hold    string        // requests to this version wait for release ("": none wait)
	release chan struct{} // closed by the test
	// onVersion, when set, runs first and may answer instead (a non-nil error).
	onVersion func(version string) error
}

func (b *versionedLLM) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	if b.onVersion != nil {
		if err := b.onVersion(req.Version); err != nil {
			return llm.Usage{}, err
		}
	}
	if b.hold != "" && req.Version == b.hold {
		select {
		case <-b.release:
		case <-ctx.Done():
			return llm.Usage{}, ctx.Err()
		}
	}
	return llm.Usage{PromptTokens: 1, CompletionTokens: 1}, emit(llm.Delta{Text: "v" + req.Version, FinishReason: "stop"})
}

// recorder keeps the records the taps get.
type recorder struct {
	mu   sync.Mutex
	recs []*core.Record
}

func (r *recorder) Finished(rec *core.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Keep())
}

func (r *recorder) byRoute() map[string][]*core.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]*core.Record{}
	for _, rec := range r.recs {
		out[rec.Route] = append(out[rec.Route], rec)
	}
	return out
}

func routedBackend(t *testing.T, b llm.Backend, p *router.Policy) (*loggedLLM, *router.Table, *recorder) {
	t.Helper()
	routes := new(router.Table)
	if err := routes.Set("m", p); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	l := &loggedLLM{Backend: b, taps: []core.Tap{rec}, router: newLLMRouter(routes, slog.New(slog.DiscardHandler)),
		defaults: func(string) (string, bool) { return "1", true }}
	return l, routes, rec
}

func ask(t *testing.T, b llm.Backend, req *llm.Request) string {
	t.Helper()
	var text string
	if _, err := b.Generate(t.Context(), req, func(d llm.Delta) error { text += d.Text; return nil }); err != nil {
		t.Fatal(err)
	}
	return text
}

// TestLLMShadowsAreBounded: shadow copies never hold the client; past llmShadowSlots
// copies in flight the rest are dropped and counted; each copy's record has route
// "shadow" and compares its text with the client's answer.
func TestLLMShadowsAreBounded(t *testing.T) {
	fake := &versionedLLM{hold: "2", release: make(chan struct{})}
	b, _, rec := routedBackend(t, fake, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}, Shadow: &router.Shadow{Version: "2", Percent: 100}})
	const extra = 3
	for range llmShadowSlots + extra {
		if got := ask(t, b, &llm.Request{Model: "m", Kind: llm.Completion, Prompt: "x"}); got != "v1" {
			t.Fatalf("client answer %q, want version 1's while its copies wait", got)
		}
	}
	if n := testutil.ToFloat64(b.router.dropped); n != extra {
		t.Errorf("%v copies dropped, want %d (slots %d)", n, extra, llmShadowSlots)
	}
	close(fake.release)
	b.router.shadows.Wait() // the copies finish on their own before close would cut them
	b.router.close()
	got := rec.byRoute()
	if len(got["weight"]) != llmShadowSlots+extra || len(got["shadow"]) != llmShadowSlots {
		t.Fatalf("%d primary and %d shadow records, want %d and %d", len(got["weight"]), len(got["shadow"]), llmShadowSlots+extra, llmShadowSlots)
	}
	for _, r := range got["shadow"] {
		if r.Version != "2" || r.Shadow == nil || r.Shadow.Primary != "1" || r.Shadow.Diff != 1 || r.Err != nil {
			t.Errorf("shadow record %+v (shadow %+v), want version 2 compared with 1, differing", r, r.Shadow)
		}
	}
	if r := got["weight"][0]; r.Version != "1" || r.Shadow != nil {
		t.Errorf("primary record %+v, want version 1 and no comparison", r)
	}
}

// TestLLMRouteByUserAndRedecide: a match on the parameter "user" reads OpenAI's user
// field, a header match reads the HTTP header; a request whose version was let go
// after the policy moved is decided again and recorded once.
func TestLLMRouteByUserAndRedecide(t *testing.T) {
	fake := &versionedLLM{}
	b, routes, rec := routedBackend(t, fake, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}},
		Matches: []router.Match{{From: router.SourceParameter, Key: "user", Value: "alice", Version: "2"},
			{From: router.SourceHeader, Key: "x-variant", Value: "b", Version: "3"}}})
	for _, tc := range []struct {
		name, user, header, want string
	}{{"no rule", "bob", "", "v1"}, {"user alice", "alice", "", "v2"}, {"header b", "", "b", "v3"}} {
		req := &llm.Request{Model: "m", User: tc.user, Header: http.Header{"X-Variant": {tc.header}}}
		if got := ask(t, b, req); got != tc.want {
			t.Errorf("%s: answer %q, want %q", tc.name, got, tc.want)
		}
		if req.Version != "" {
			t.Errorf("%s: the caller's request was changed (version %q)", tc.name, req.Version)
		}
	}
	fake.onVersion = func(v string) error {
		if v != "1" {
			return nil
		}
		if err := routes.Set("m", &router.Policy{Arms: []router.Arm{{Version: "4", Weight: 100}}}); err != nil {
			t.Error(err)
		}
		return llm.VersionNotFound("m", v)
	}
	before := len(rec.byRoute()["weight"])
	if got := ask(t, b, &llm.Request{Model: "m"}); got != "v4" {
		t.Errorf("a request to a version let go after the policy moved: %q, want v4", got)
	}
	if w := rec.byRoute()["weight"]; len(w) != before+1 || w[len(w)-1].Version != "4" || w[len(w)-1].Err != nil {
		t.Errorf("records after the move: %d more, last %+v; want one, version 4, no error", len(w)-before, w[len(w)-1])
	}
}

type discardTap struct{}

func (discardTap) Finished(*core.Record) {}

// BenchmarkLLMRecordAndRoute is the LLM lane's cost per exchange around the backend:
// the record alone (no policy), and with a policy deciding the version.
func BenchmarkLLMRecordAndRoute(b *testing.B) {
	routes := new(router.Table)
	if err := routes.Set("routed", &router.Policy{Arms: []router.Arm{{Version: "2", Weight: 50}, {Version: "1", Weight: 50}},
		Matches: []router.Match{{From: router.SourceHeader, Key: "x-variant", Value: "b", Version: "2"}}}); err != nil {
		b.Fatal(err)
	}
	l := &loggedLLM{Backend: &versionedLLM{}, taps: []core.Tap{discardTap{}}, router: newLLMRouter(routes, slog.New(slog.DiscardHandler)),
		defaults: func(string) (string, bool) { return "1", true }}
	hdr := http.Header{"Content-Type": {"application/json"}}
	for _, model := range []string{"unrouted", "routed"} {
		b.Run(model, func(b *testing.B) {
			req := &llm.Request{Model: model, Kind: llm.Chat, Messages: []llm.Message{{Role: "user", Content: "Hello there"}}, Header: hdr}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Generate(context.Background(), req, func(llm.Delta) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
