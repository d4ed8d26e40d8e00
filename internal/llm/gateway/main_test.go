package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/llm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newGateway parses cfg (YAML) and builds a gateway closed when the test ends.
func newGateway(t testing.TB, cfg string, opts Options) *Gateway {
	t.Helper()
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerr = %v", cfg, err)
	}
	g, err := New(c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// upstreamYAML is one HTTP upstream entry serving model "m" (and alias).
func upstreamYAML(name, kind, url string, window int, extra string) string {
	return fmt.Sprintf(`
  - name: %s
    kind: %s
    base_url: %s
    context_window: %d
    models: {m: %s-model, %s: %s-model}
%s`, name, kind, url, window, name, name, name, indent(extra, "    "))
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func chatReq(model, text string, stream bool) *llm.Request {
	return &llm.Request{Model: model, Kind: llm.Chat, Messages: []llm.Message{{Role: "user", Content: text}},
		Sampling: llm.DefaultSampling(), Stream: stream}
}

// answer runs Generate and joins the text it emitted.
func answer(g *Gateway, req *llm.Request) (string, llm.Usage, error) {
	var b strings.Builder
	u, err := g.Generate(context.Background(), req, func(d llm.Delta) error {
		b.WriteString(d.Text)
		return nil
	})
	return b.String(), u, err
}

// clock is a settable time for budgets, windows and cooldowns.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// wantCode fails unless err is an *llm.Error with status and code.
func wantCode(t *testing.T, err error, status int, code string) *llm.Error {
	t.Helper()
	e := llm.AsError(err)
	if e == nil || e.Status != status || e.Code != code {
		t.Fatalf("err = %#v (%v), want status %d code %q", e, err, status, code)
	}
	return e
}
