package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// load is what an upstream's /metrics said at one scrape.
type load struct {
	queue float64 // requests running plus waiting (vLLM), processing plus deferred (llama.cpp)
	kv    float64 // KV cache use, 0..1; breaks ties between equal queues
	at    time.Time
}

// scraped lists, per kind, the gauges summed into load.queue and the one read as
// load.kv. Other kinds expose nothing useful: the gateway's own in-flight count stands in.
var scraped = map[string]struct {
	queue []string
	kv    string
}{
	KindVLLM:     {queue: []string{"vllm:num_requests_running", "vllm:num_requests_waiting"}, kv: "vllm:kv_cache_usage_perc"},
	KindLlamaCPP: {queue: []string{"llamacpp:requests_processing", "llamacpp:requests_deferred"}, kv: "llamacpp:kv_cache_usage_ratio"},
}

// busy scores how loaded the upstream is; lower is better. A scrape older than
// three intervals is ignored in favour of the in-flight count, as is a kind with no
// gauges.
func (u *upstream) busy() float64 {
	if l := u.load.Load(); l != nil && time.Since(l.at) < 3*u.scrapeEvery() {
		return l.queue + l.kv
	}
	return float64(u.inflight.Load())
}

func (u *upstream) scrapeEvery() time.Duration { return max(u.scrapeInterval, time.Second) }

// scrape reads /metrics of every upstream with gauges, in parallel; failures are
// logged and leave the last reading to age out.
func (g *Gateway) scrape(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range g.ups {
		if _, ok := scraped[u.cfg.Kind]; !ok {
			continue
		}
		wg.Go(func() {
			l, err := g.scrapeOne(ctx, u)
			if err != nil {
				g.log.Warn("scraping upstream metrics failed", "upstream", u.cfg.Name, "err", err)
				return
			}
			u.load.Store(l)
		})
	}
	wg.Wait()
}

func (g *Gateway) scrapeOne(ctx context.Context, u *upstream) (*load, error) {
	ctx, cancel := context.WithTimeout(ctx, g.scrapeEvery)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u.cfg.BaseURL, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if u.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+u.apiKey)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sums := sumGauges(io.LimitReader(resp.Body, 16<<20))
	want := scraped[u.cfg.Kind]
	l := &load{kv: sums[want.kv], at: time.Now()}
	for _, name := range want.queue {
		l.queue += sums[name]
	}
	return l, nil
}

// sumGauges reads Prometheus text exposition and sums each metric's samples over
// its label sets (one per model_name on vLLM). Lines it cannot read are skipped:
// scraping is advisory and a newer server's format must not break routing.
func sumGauges(r io.Reader) map[string]float64 {
	sums := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sums[name] += v
		}
	}
	return sums
}
