package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// tinyMLP is a 16 -> 32 -> 8 perceptron with seeded weights: a model of 3 KiB whose
// session holds a few tens of KiB, so a budget fits only a few and the noise of a
// measurement under traffic is as large as the model (what the budget must withstand).
func tinyMLP(seed int) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	w := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.Float64() - 0.5)
		}
		return v
	}
	return onnxgen.NewModel("tiny").Input("input", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(16)).
		InitializerFloat32("w1", []int64{16, 32}, w(16*32)).
		InitializerFloat32("w2", []int64{32, 8}, w(32*8)).
		Node("MatMul", []string{"input", "w1"}, []string{"h"}).
		Node("Relu", []string{"h"}, []string{"r"}).
		Node("MatMul", []string{"r", "w2"}, []string{"output"}).
		Output("output", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(8)).Bytes()
}

func tinyRepo(t testing.TB, n int) string {
	t.Helper()
	repo := t.TempDir()
	for i := range n {
		writeModel(t, repo, lookupName(i), 1, tinyMLP(i), "")
	}
	return repo
}

const tinyBody = `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}`

// inferTiny asks model i once over REST; any answer but 200 is an error.
func inferTiny(ctx context.Context, c *http.Client, url string, i int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v2/models/"+lookupName(i)+"/infer", strings.NewReader(tinyBody))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"outputs"`)) {
		return fmt.Errorf("%s: status %d: %s", lookupName(i), resp.StatusCode, b)
	}
	return nil
}

// tinyCharge is what the server charges one tiny model loaded alone, with no other
// traffic: the growth of the accounted total over the second of two loads (the first
// model of a process pays nothing more, but this keeps the figure a model's own).
func tinyCharge(t testing.TB) int64 {
	t.Helper()
	ts := startServer(t, tinyRepo(t, 6), onDemand(1<<40))
	defer ts.stop()
	var last int64
	var each []int64
	for i := range 6 {
		if err := inferTiny(context.Background(), http.DefaultClient, ts.URL, i); err != nil {
			t.Fatal(err)
		}
		now := ts.repo.ResidentBytes()
		each, last = append(each, now-last), now
	}
	t.Logf("tiny models charged alone: %v", each)
	slices.Sort(each)
	return each[len(each)/2]
}

// The memory budget under concurrency (issue 12): 100 tiny models, a budget of six and
// a half times what one is charged loaded alone (one), and 32 clients asking models at
// random for 20 s. A load measured under traffic is not one measured alone (requests in
// flight allocate and free C memory meanwhile), so charges vary; the floor keeps each
// above 2/3 of one. Checked throughout: no version is charged less than 2/3 of one
// (ferry_model_resident_bytes, scraped every 20 ms), the accounted total never exceeds
// the budget, and so the READY models (the index, sampled every 2 ms) never exceed
// budget / (2/3 one), that is 9. No request fails (a load that finds every loaded model
// in use waits for one to become idle); afterwards every model answers a lone request.
// It also reports the budget's accuracy: the accounted total against the growth of the
// C heap, where ONNX Runtime keeps the sessions.
func TestOnDemandBudgetBoundsLoadedModelsUnderConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of traffic (run without -short)")
	}
	const models, clients = 100, 32
	traffic := 20 * time.Second
	one := tinyCharge(t)
	budget := 6*one + one/2
	least := one * 2 / 3
	bound := budget / least
	ts := startServer(t, tinyRepo(t, models), onDemand(budget))
	heap0 := onnx.HeapInUse()

	var maxReady, peakAccounted, peakHeap atomic.Int64
	var accSum, heapSum, samples atomic.Int64
	stop := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			ready := 0
			for _, e := range ts.repo.Index(false) {
				if e.State == "READY" {
					ready++
				}
			}
			acc := ts.repo.ResidentBytes()
			maxReady.Store(max(maxReady.Load(), int64(ready)))
			peakAccounted.Store(max(peakAccounted.Load(), acc))
			if n%50 == 0 { // HeapInUse walks the allocator's lists under their locks
				grown := onnx.HeapInUse() - heap0
				peakHeap.Store(max(peakHeap.Load(), grown))
				accSum.Add(acc)
				heapSum.Add(grown)
				samples.Add(1)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var minCharge atomic.Int64
	minCharge.Store(one)
	sampling.Go(func() {
		for {
			for _, c := range metricValues(t, ts.URL, "ferry_model_resident_bytes") {
				minCharge.Store(min(minCharge.Load(), int64(c)))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})

	load := drive(clients, traffic, func(c *http.Client, rng *rand.Rand) error {
		return inferTiny(context.Background(), c, ts.URL, rng.IntN(models))
	})
	close(stop)
	sampling.Wait()

	evicted := metricSum(t, ts.URL, "ferry_model_unloads_total", `reason="evicted"`)
	t.Logf("one model charged %d bytes alone; budget %d; least charge seen %d; %d requests in %s (%d failed), %v evictions",
		one, budget, minCharge.Load(), load.ok, traffic, load.failed, evicted)
	t.Logf("READY models at most %d; accounted at most %d bytes; C heap grew by at most %d bytes; on average accounted %d, C heap grown %d",
		maxReady.Load(), peakAccounted.Load(), peakHeap.Load(), accSum.Load()/max(samples.Load(), 1), heapSum.Load()/max(samples.Load(), 1))
	if load.failed > 0 {
		t.Errorf("%d of %d requests failed; first: %v", load.failed, load.failed+load.ok, load.firstErr)
	}
	if got := minCharge.Load(); got < least {
		t.Errorf("a version was charged %d bytes; a tiny model is charged %d alone, want at least %d", got, one, least)
	}
	if got := maxReady.Load(); got > bound {
		t.Errorf("%d models READY at once; the budget (%d bytes) fits %d charged at least %d each", got, budget, bound, least)
	}
	if p := peakAccounted.Load(); p > budget {
		t.Errorf("accounted memory reached %d bytes, over the %d-byte budget", p, budget)
	}
	if evicted < float64(models-bound) {
		t.Errorf("%v evictions; with %d models and room for %d, want at least %d", evicted, models, bound, models-bound)
	}
	for i := range models {
		if err := inferTiny(context.Background(), http.DefaultClient, ts.URL, i); err != nil {
			t.Errorf("after the traffic, a lone request: %v", err)
		}
	}
}

// A budget that fits one model and a half, and requests alternating between two models:
// every request is answered, and each load evicts the other model. Before issue 12 a load
// could be charged nothing (what Go's heap moved meanwhile), and both sat in a budget for
// one; and the first model of a process, charged ONNX Runtime's one-time set-up, was
// refused for good. Tests here share one runtime, so that part is checked in
// internal/backend/onnx (TestFirstSessionPaysNoOneTimeCosts).
func TestOnDemandBudgetAlternatingModelsEachFit(t *testing.T) {
	one := tinyCharge(t)
	ts := startServer(t, tinyRepo(t, 2), onDemand(one+one/2))
	for i := range 6 {
		if err := inferTiny(context.Background(), http.DefaultClient, ts.URL, i%2); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if evicted := metricSum(t, ts.URL, "ferry_model_unloads_total", `reason="evicted"`); evicted < 5 {
		t.Errorf("%v evictions over six alternating requests, want 5 (one model fits)", evicted)
	}
}

// loadResult is what drive saw: requests answered, requests failed, the first failure.
type loadResult struct {
	ok, failed int64
	firstErr   error
}

// drive runs clients closed-loop clients for d, each with its own seeded random source
// and all sharing one keep-alive HTTP client, each calling do until d has passed.
func drive(clients int, d time.Duration, do func(*http.Client, *rand.Rand) error) loadResult {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	end := time.Now().Add(d)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			for time.Now().Before(end) {
				if err := do(client, rng); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	tr := loadResult{ok: ok.Load(), failed: failed.Load()}
	tr.firstErr, _ = firstErr.Load().(error)
	return tr
}
