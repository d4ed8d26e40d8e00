package main

// The dynamic batcher's scheduling behaviours, end to end: a real server on real sockets
// running models in the real ONNX Runtime. Every model here is schedModel, a chain of
// MatMuls over [batch, cost, 512] inputs, so the test picks each request's run time
// with its cost dimension: a cost-1 request runs in a millisecond, a cost-256 one for
// hundreds. Requests of different costs never share a batch (their shapes differ after
// the batch dimension).
//
// The tests never sleep to let something happen: they wait on what /metrics shows
// (requests in flight, queue depth, drops, executions), then act.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	schedWidth = 512 // the inner dimension of schedModel's input
	schedSteps = 200 // MatMuls per run

	// Costs (the second input dimension) of the requests the tests send. On a 2-core
	// machine a schedSlow request runs for about 250 ms; the tests check that it is
	// still running at the points where they rely on it.
	schedFast     = 1
	schedMedium   = 64
	schedSlow     = 256
	schedVerySlow = 512
	// schedHuge holds the instance while a test queues, refuses, cancels or expires
	// requests behind it: with schedSlow or schedVerySlow the busy request sometimes ended
	// first under a loaded make test (TestSchedulingCancelledRequestsNeverRun,
	// TestSchedulingDeadlineStatus, TestSchedulingQueueFull, TestSchedulingTimeouts/DELAY,
	// which failed so even on a quiet machine).
	schedHuge = 1024
)

// schedModel multiplies its [batch, cost, 512] input by the identity `steps` times and
// sums each row: OUTPUT0 [batch, cost, 1] is 512 times the input's value when every
// element holds the same value, so each response shows which request it answers.
func schedModel(steps int) []byte {
	eye := make([]float32, schedWidth*schedWidth)
	for i := range schedWidth {
		eye[i*schedWidth+i] = 1
	}
	ones := make([]float32, schedWidth)
	for i := range ones {
		ones[i] = 1
	}
	m := onnxgen.NewModel("sched").
		Input("INPUT0", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Sym("cost"), onnxgen.Fixed(schedWidth)).
		Output("OUTPUT0", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Sym("cost"), onnxgen.Fixed(1)).
		InitializerFloat32("W", []int64{schedWidth, schedWidth}, eye).
		InitializerFloat32("SUM", []int64{schedWidth, 1}, ones)
	prev := "INPUT0"
	for i := range steps {
		out := fmt.Sprintf("h%d", i)
		m.Node("MatMul", []string{prev, "W"}, []string{out})
		prev = out
	}
	m.Node("MatMul", []string{prev, "SUM"}, []string{"OUTPUT0"})
	return m.Bytes()
}

// schedConfig is a config for schedModel with the given batching and instances;
// batching is the body of dynamic_batching { }.
func schedConfig(name string, maxBatch, instances int, batching string) string {
	return fmt.Sprintf(`name: %q
platform: "onnxruntime_onnx"
max_batch_size: %d
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1, %d ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1, 1 ] } ]
instance_group [ { count: %d kind: KIND_CPU } ]
dynamic_batching { %s }
`, name, maxBatch, schedWidth, instances, batching)
}

// schedServer serves the given models (name -> config) of schedModel.
func schedServer(t *testing.T, configs map[string]string) *testServer {
	t.Helper()
	repo := t.TempDir()
	model := schedModel(schedSteps)
	for name, cfg := range configs {
		writeModel(t, repo, name, 1, model, cfg)
	}
	return startServer(t, repo)
}

// schedReq is one inference request for schedModel.
type schedReq struct {
	name   string           // for messages; also the request id
	items  int              // the batch dimension; 0 means 1
	cost   int              // the second dimension: run time grows with it
	fill   float32          // every input element
	params map[string]int64 // V2 request parameters (priority, timeout)
}

func (r schedReq) shape() []int64 { return []int64{int64(max(r.items, 1)), int64(r.cost), schedWidth} }

func (r schedReq) raw() []byte {
	n := max(r.items, 1) * r.cost * schedWidth
	b := make([]byte, 4*n)
	bits := math.Float32bits(r.fill)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], bits)
	}
	return b
}

// schedCall is a request sent in the background.
type schedCall struct {
	req   schedReq
	start time.Time
	end   time.Time // when the answer arrived
	done  chan struct{}

	httpStatus int        // HTTP: the status code
	code       codes.Code // gRPC: the status code
	msg        string     // the error message of a failed request
	err        error      // no answer: the transport failed or the client gave up
	out        []float32
}

// ok reports whether the call succeeded.
func (c *schedCall) ok() bool {
	return c.err == nil && c.msg == "" && (c.httpStatus == http.StatusOK || c.httpStatus == 0 && c.code == codes.OK)
}

func (c *schedCall) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *schedCall) wait(t *testing.T) *schedCall {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer after 30 s", c.req.name)
	}
	return c
}

func (c *schedCall) latency() time.Duration { return c.end.Sub(c.start) }

func (c *schedCall) String() string {
	switch {
	case c.err != nil:
		return fmt.Sprintf("%s: %v", c.req.name, c.err)
	case c.msg != "":
		return fmt.Sprintf("%s: HTTP %d / gRPC %v: %s", c.req.name, c.httpStatus, c.code, c.msg)
	}
	return fmt.Sprintf("%s: ok after %v", c.req.name, c.latency().Round(time.Millisecond))
}

// wantOK fails unless the call succeeded with its own outputs.
func (c *schedCall) wantOK(t *testing.T) {
	t.Helper()
	c.wait(t)
	if !c.ok() {
		t.Errorf("%v; want success", c)
		return
	}
	n := max(c.req.items, 1) * c.req.cost
	if len(c.out) != n {
		t.Errorf("%s: %d outputs, want %d", c.req.name, len(c.out), n)
		return
	}
	for i, v := range c.out {
		if want := c.req.fill * schedWidth; v != want {
			t.Errorf("%s: output[%d] = %v, want %v (another request's answer?)", c.req.name, i, v, want)
			return
		}
	}
}

// schedGo sends r over proto ("http" or "grpc") in the background.
func schedGo(ctx context.Context, ts *testServer, proto, model string, r schedReq) *schedCall {
	c := &schedCall{req: r, start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if proto == "grpc" {
			schedGRPC(ctx, ts, model, c)
		} else {
			schedHTTP(ctx, ts, model, c)
		}
		c.end = time.Now()
	}()
	return c
}

func schedHTTP(ctx context.Context, ts *testServer, model string, c *schedCall) {
	raw := c.req.raw()
	hdr := map[string]any{
		"id": c.req.name,
		"inputs": []any{map[string]any{"name": "INPUT0", "datatype": "FP32", "shape": c.req.shape(),
			"parameters": map[string]any{"binary_data_size": len(raw)}}},
	}
	if len(c.req.params) > 0 {
		hdr["parameters"] = c.req.params
	}
	head, err := json.Marshal(hdr)
	if err != nil {
		c.err = err
		return
	}
	req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v2/models/"+model+"/infer", io.MultiReader(bytes.NewReader(head), bytes.NewReader(raw)))
	if err != nil {
		c.err = err
		return
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.err = err
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.err = err
		return
	}
	c.httpStatus = resp.StatusCode
	var out struct {
		Error   string `json:"error"`
		Outputs []struct {
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		c.err = fmt.Errorf("HTTP %d, body %.200q: %w", resp.StatusCode, body, err)
		return
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		c.msg = out.Error
	case len(out.Outputs) != 1:
		c.err = fmt.Errorf("%d outputs in %.200q", len(out.Outputs), body)
	default:
		c.out = out.Outputs[0].Data
	}
}

func schedGRPC(ctx context.Context, ts *testServer, model string, c *schedCall) {
	req := &inference.ModelInferRequest{
		ModelName:        model,
		Id:               c.req.name,
		Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: c.req.shape()}},
		RawInputContents: [][]byte{c.req.raw()},
	}
	if len(c.req.params) > 0 {
		req.Parameters = map[string]*inference.InferParameter{}
		for k, v := range c.req.params {
			req.Parameters[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: v}}
		}
	}
	res, err := ts.GRPC.ModelInfer(ctx, req)
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			c.err = err
			return
		}
		c.code, c.msg = st.Code(), st.Message()
		if c.code == codes.Canceled || c.code == codes.DeadlineExceeded {
			c.err = err // the client gave up: the server never answered
		}
		return
	}
	if len(res.GetRawOutputContents()) != 1 {
		c.err = fmt.Errorf("%d raw outputs", len(res.GetRawOutputContents()))
		return
	}
	b := res.GetRawOutputContents()[0]
	for i := 0; i+4 <= len(b); i += 4 {
		c.out = append(c.out, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
}

// schedMetrics is one scrape of /metrics.
type schedMetrics string

func schedScrape(t *testing.T, ts *testServer) schedMetrics {
	t.Helper()
	code, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return schedMetrics(b)
}

// get returns the sample of the series `name` whose labels include every k="v" of
// labels (given as k, v, k, v...), summed over the series that match; 0 when none does.
func (m schedMetrics) get(name string, labels ...string) float64 {
	total := 0.0
	for line := range strings.Lines(string(m)) {
		line = strings.TrimSpace(line)
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(series, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if v, err := strconv.ParseFloat(value, 64); match && err == nil {
			total += v
		}
	}
	return total
}

// The per-model series the tests watch.
func (m schedMetrics) inFlight(model string) int {
	return int(m.get("ferry_requests_in_flight", "model", model))
}

func (m schedMetrics) depth(model string) int { return int(m.get("ferry_queue_depth", "model", model)) }

func (m schedMetrics) dropped(model, reason string) int {
	return int(m.get("ferry_requests_dropped_total", "model", model, "reason", reason))
}

func (m schedMetrics) executions(model string) int {
	return int(m.get("ferry_batch_size_count", "model", model))
}

// schedWait polls /metrics until cond holds on reads at least 10 ms apart. A request
// counted in flight reaches the queue microseconds later; the second read makes sure
// it has, so what the test does next finds it there.
func schedWait(t *testing.T, ts *testServer, what string, cond func(schedMetrics) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var since time.Time
	for time.Now().Before(deadline) {
		if cond(schedScrape(t, ts)) {
			if since.IsZero() {
				since = time.Now()
			} else if time.Since(since) >= 10*time.Millisecond {
				return
			}
		} else {
			since = time.Time{}
		}
		time.Sleep(2 * time.Millisecond)
	}
	var lines []string
	for line := range strings.Lines(string(schedScrape(t, ts))) {
		if strings.HasPrefix(line, "ferry_requests_in_flight") || strings.HasPrefix(line, "ferry_queue_depth") ||
			strings.HasPrefix(line, "ferry_requests_dropped") || strings.HasPrefix(line, "ferry_batch_size_count") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	t.Fatalf("waited 20 s for %s; /metrics shows:\n%s", what, strings.Join(lines, "\n"))
}

// schedStillRunning fails the test when the request occupying the instance has already
// finished: the setup took longer than its run, so what follows would prove nothing.
func schedStillRunning(t *testing.T, c *schedCall, what string) {
	t.Helper()
	if c.finished() {
		t.Fatalf("%s finished (%v) before %s; the test relies on it still running: either the server acted late or the machine is too slow for these costs", c.req.name, c, what)
	}
}

// tritonWait, after a schedConfig, turns the adaptive wait off: Triton's semantics.
const tritonWait = `parameters { key: "adaptive_batching" value { string_value: "false" } }
`

// TestSchedulingQueueDelay: with Triton's semantics and fewer rows queued than a
// preferred batch size, a request waits for max_queue_delay and no longer (plus
// scheduling slack); rows adding up to a preferred size go at once.
func TestSchedulingQueueDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	const slack = 200 * time.Millisecond // -race on a loaded 2-core machine
	ts := schedServer(t, map[string]string{
		"window":    schedConfig("window", 16, 1, fmt.Sprintf("preferred_batch_size: [ 8 ] max_queue_delay_microseconds: %d", delay.Microseconds())) + tritonWait,
		"preferred": schedConfig("preferred", 16, 1, "preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 10000000") + tritonWait,
	})
	ctx := t.Context()

	t.Run("one request waits the delay", func(t *testing.T) {
		c := schedGo(ctx, ts, "grpc", "window", schedReq{name: "alone", cost: schedFast, fill: 1})
		c.wantOK(t)
		st := schedStats(t, ts, "window")
		queued := time.Duration(st.InferenceStats.Queue.NS)
		if st.InferenceStats.Queue.Count != 1 || queued < delay-time.Millisecond || queued > delay+slack {
			t.Errorf("queue time %v over %d requests; want one request queued for %v..%v", queued, st.InferenceStats.Queue.Count, delay, delay+slack)
		}
		if c.latency() < delay || c.latency() > delay+slack {
			t.Errorf("latency %v; want %v..%v", c.latency(), delay, delay+slack)
		}
	})

	t.Run("three requests wait at most the delay", func(t *testing.T) {
		before := schedStats(t, ts, "window")
		var calls []*schedCall
		for i := range 3 {
			calls = append(calls, schedGo(ctx, ts, []string{"http", "grpc"}[i%2], "window",
				schedReq{name: fmt.Sprint("r", i), cost: schedFast, fill: float32(i + 2)}))
		}
		for _, c := range calls {
			c.wantOK(t)
			if c.latency() > delay+slack {
				t.Errorf("%s answered after %v; want at most %v + %v", c.req.name, c.latency(), delay, slack)
			}
		}
		after := schedStats(t, ts, "window")
		execs := after.ExecutionCount - before.ExecutionCount
		queued := time.Duration(after.InferenceStats.Queue.NS - before.InferenceStats.Queue.NS)
		// Each batch went when its oldest request had waited the delay, not before.
		if execs < 1 || execs > 3 || queued < time.Duration(execs)*(delay-time.Millisecond) {
			t.Errorf("%d executions, %v queued in all; want each execution's oldest request to have waited %v", execs, queued, delay)
		}
		t.Logf("3 requests in %d executions, %v queued in all", execs, queued)
	})

	t.Run("a preferred batch goes at once", func(t *testing.T) {
		// The delay is 10 s: answers within 2 s mean the batch went when it reached 8 rows.
		a := schedGo(ctx, ts, "grpc", "preferred", schedReq{name: "four-a", items: 4, cost: schedFast, fill: 1})
		b := schedGo(ctx, ts, "http", "preferred", schedReq{name: "four-b", items: 4, cost: schedFast, fill: 2})
		for _, c := range []*schedCall{a, b} {
			c.wantOK(t)
			if c.latency() > 2*time.Second {
				t.Errorf("%s answered after %v; 4+4 rows make the preferred 8 and should go at once", c.req.name, c.latency())
			}
		}
		eight := schedGo(ctx, ts, "grpc", "preferred", schedReq{name: "eight", items: 8, cost: schedFast, fill: 3})
		eight.wantOK(t)
		if eight.latency() > 2*time.Second {
			t.Errorf("an 8-row request answered after %v; want at once", eight.latency())
		}
		st := schedStats(t, ts, "preferred")
		if st.ExecutionCount != 2 || len(st.BatchStats) != 1 || st.BatchStats[0].BatchSize != 8 {
			t.Errorf("%d executions, batch sizes %+v; want two executions of 8 rows", st.ExecutionCount, st.BatchStats)
		}
	})
}

// TestSchedulingAdaptiveWait: under the default adaptive wait a 10 s queue delay costs
// nothing when no more requests can come, and closed-loop clients are still batched.
func TestSchedulingAdaptiveWait(t *testing.T) {
	ts := schedServer(t, map[string]string{
		"adaptive": schedConfig("adaptive", 16, 1, "max_queue_delay_microseconds: 10000000"),
	})
	ctx := t.Context()
	const soon = 2 * time.Second // the delay is 10 s

	t.Run("a lone request runs at once", func(t *testing.T) {
		c := schedGo(ctx, ts, "grpc", "adaptive", schedReq{name: "alone", cost: schedFast, fill: 1})
		c.wantOK(t)
		if c.latency() > soon {
			t.Errorf("a lone request answered after %v; nothing else was coming", c.latency())
		}
	})

	t.Run("closed-loop clients batch without waiting out the delay", func(t *testing.T) {
		const clients = 4
		before, beforeM := schedStats(t, ts, "adaptive"), schedScrape(t, ts)
		end := time.Now().Add(3 * time.Second)
		done := make(chan int, clients)
		for i := range clients {
			go func() {
				n := 0
				for time.Now().Before(end) && !t.Failed() {
					c := schedGo(ctx, ts, []string{"http", "grpc"}[i%2], "adaptive",
						schedReq{name: fmt.Sprintf("client%d-%d", i, n), cost: schedFast, fill: float32(i + 1)})
					c.wantOK(t)
					if c.latency() > soon {
						t.Errorf("%s answered after %v; all %d clients were already queued or running", c.req.name, c.latency(), clients)
					}
					n++
				}
				done <- n
			}()
		}
		sent := 0
		for range clients {
			sent += <-done
		}
		after := schedStats(t, ts, "adaptive")
		requests, execs := after.InferenceCount-before.InferenceCount, after.ExecutionCount-before.ExecutionCount
		if requests != uint64(sent) || float64(requests) < 1.5*float64(execs) {
			t.Errorf("%d requests sent, %d counted in %d executions; want them batched (at least 1.5 per execution)", sent, requests, execs)
		}
		// The metric says why each batch ran: an instance was free and everyone was in.
		m := schedScrape(t, ts)
		batches := func(reason string) float64 {
			return m.get("ferry_batch_queue_delay_seconds_count", "model", "adaptive", "reason", reason) -
				beforeM.get("ferry_batch_queue_delay_seconds_count", "model", "adaptive", "reason", reason)
		}
		if idle, delay := batches("idle"), batches("delay"); idle < float64(execs)/2 || delay > 0 {
			t.Errorf("ferry_batch_queue_delay_seconds_count: %v batches ran idle and %v on the delay, of %d executions; want mostly idle, none on the 10 s delay",
				idle, delay, execs)
		}
		t.Logf("%d clients: %d requests in %d executions (%.2f per execution)", clients, requests, execs, float64(requests)/float64(max(execs, 1)))
	})
}

// TestSchedulingPriority: with the one instance busy and low-priority requests queued, a
// high-priority request runs next.
func TestSchedulingPriority(t *testing.T) {
	ts := schedServer(t, map[string]string{
		"prio": schedConfig("prio", 1, 1, "priority_levels: 2 default_priority_level: 2"),
	})
	ctx := t.Context()
	busy := schedGo(ctx, ts, "grpc", "prio", schedReq{name: "busy", cost: schedVerySlow, fill: 1})
	schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("prio") == 1 })
	var low []*schedCall
	for i, params := range []map[string]int64{nil, {"priority": 2}, {"priority": 0}} { // 0: the default level
		low = append(low, schedGo(ctx, ts, []string{"grpc", "http"}[i%2], "prio",
			schedReq{name: fmt.Sprint("low", i), cost: schedMedium, fill: float32(i + 2), params: params}))
	}
	schedWait(t, ts, "three requests queued at priority 2", func(m schedMetrics) bool {
		return m.inFlight("prio") == 4 && int(m.get("ferry_queue_depth", "model", "prio", "priority", "2")) == 3
	})
	schedStillRunning(t, busy, "the low-priority requests were queued")
	high := schedGo(ctx, ts, "http", "prio", schedReq{name: "high", cost: schedMedium, fill: 9, params: map[string]int64{"priority": 1}})

	all := append([]*schedCall{busy, high}, low...)
	for _, c := range all {
		c.wantOK(t)
	}
	slices.SortFunc(all, func(a, b *schedCall) int { return a.end.Compare(b.end) })
	var order []string
	for _, c := range all {
		order = append(order, c.req.name)
	}
	if order[0] != "busy" || order[1] != "high" {
		t.Errorf("completion order %v; want the high-priority request right after the one that was running", order)
	}
}

// TestSchedulingQueueFull: a priority level's max_queue_size refuses further requests at
// once (HTTP 503, gRPC UNAVAILABLE) and counts them; the queued ones still run.
func TestSchedulingQueueFull(t *testing.T) {
	ts := schedServer(t, map[string]string{
		"bounded": schedConfig("bounded", 1, 1, "default_queue_policy { max_queue_size: 2 }"),
	})
	ctx := t.Context()
	busy := schedGo(ctx, ts, "grpc", "bounded", schedReq{name: "busy", cost: schedHuge, fill: 1})
	schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("bounded") == 1 })
	var queued []*schedCall
	for i := range 2 {
		queued = append(queued, schedGo(ctx, ts, "grpc", "bounded", schedReq{name: fmt.Sprint("queued", i), cost: schedFast, fill: float32(i + 2)}))
	}
	schedWait(t, ts, "two requests queued", func(m schedMetrics) bool {
		return m.inFlight("bounded") == 3 && m.depth("bounded") == 2
	})

	overHTTP := schedGo(ctx, ts, "http", "bounded", schedReq{name: "over-http", cost: schedFast, fill: 7}).wait(t)
	overGRPC := schedGo(ctx, ts, "grpc", "bounded", schedReq{name: "over-grpc", cost: schedFast, fill: 8}).wait(t)
	inFront := !busy.finished() // refused at once, not when the queue moved
	if overHTTP.httpStatus != http.StatusServiceUnavailable || !strings.Contains(overHTTP.msg, "queue is full") {
		t.Errorf("HTTP over the queue size: %v; want 503 naming the full queue", overHTTP)
	}
	if overGRPC.code != codes.Unavailable || !strings.Contains(overGRPC.msg, "queue is full") {
		t.Errorf("gRPC over the queue size: %v; want UNAVAILABLE naming the full queue", overGRPC)
	}
	if !inFront {
		t.Errorf("the answers over the queue size came after the running request finished (%v); want them at once", busy)
	}
	if got := schedScrape(t, ts).dropped("bounded", "queue_full"); got != 2 {
		t.Errorf(`ferry_requests_dropped_total{reason="queue_full"} = %d, want 2`, got)
	}
	for _, c := range append([]*schedCall{busy}, queued...) {
		c.wantOK(t)
	}
	schedGo(ctx, ts, "http", "bounded", schedReq{name: "after", cost: schedFast, fill: 5}).wantOK(t)
	if st := schedStats(t, ts, "bounded"); st.ExecutionCount != 4 {
		t.Errorf("%d executions, want 4 (the refused requests never ran)", st.ExecutionCount)
	}
}

// TestSchedulingTimeouts: requests whose queue timeout expires behind a slow request
// are refused (REJECT) or served after those that have not timed out (DELAY). A
// request's "timeout" parameter overrides the default when the policy allows it.
func TestSchedulingTimeouts(t *testing.T) {
	const long = 60_000_000 // µs: never expires in these tests
	ts := schedServer(t, map[string]string{
		"reject": schedConfig("reject", 1, 1,
			"default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 20000 allow_timeout_override: true }"),
		"delay": schedConfig("delay", 1, 1,
			"default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 20000 allow_timeout_override: true }"),
	})
	ctx := t.Context()

	t.Run("REJECT", func(t *testing.T) {
		busy := schedGo(ctx, ts, "grpc", "reject", schedReq{name: "busy", cost: schedHuge, fill: 1, params: map[string]int64{"timeout": long}})
		schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("reject") == 1 })
		byDefault := schedGo(ctx, ts, "http", "reject", schedReq{name: "default-timeout", cost: schedFast, fill: 2})
		short := schedGo(ctx, ts, "grpc", "reject", schedReq{name: "short-timeout", cost: schedFast, fill: 3, params: map[string]int64{"timeout": 1000}})
		patient := schedGo(ctx, ts, "http", "reject", schedReq{name: "long-timeout", cost: schedFast, fill: 4, params: map[string]int64{"timeout": long}})
		schedWait(t, ts, "three requests behind the first", func(m schedMetrics) bool { return m.inFlight("reject") == 4 })
		time.Sleep(20 * time.Millisecond) // they were queued before the wait began: now the default timeout has passed
		schedStillRunning(t, busy, "the queued requests' timeouts passed")

		busy.wantOK(t)
		patient.wantOK(t)
		byDefault.wait(t)
		if byDefault.httpStatus != http.StatusServiceUnavailable || !strings.Contains(byDefault.msg, "timeout") {
			t.Errorf("request past the default timeout: %v; want 503 naming the timeout", byDefault)
		}
		short.wait(t)
		if short.code != codes.Unavailable || !strings.Contains(short.msg, "timeout") {
			t.Errorf("request past its own timeout: %v; want UNAVAILABLE naming the timeout", short)
		}
		// The policy is applied when the instance frees up; log how long a refusal took.
		t.Logf("refused after %v and %v; the running request took %v",
			byDefault.latency().Round(time.Millisecond), short.latency().Round(time.Millisecond), busy.latency().Round(time.Millisecond))
		if got := schedScrape(t, ts).dropped("reject", "timeout"); got != 2 {
			t.Errorf(`ferry_requests_dropped_total{reason="timeout"} = %d, want 2`, got)
		}
		if st := schedStats(t, ts, "reject"); st.ExecutionCount != 2 || st.InferenceCount != 2 {
			t.Errorf("%d executions of %d items; want 2 and 2 (timed-out requests never run)", st.ExecutionCount, st.InferenceCount)
		}
	})

	t.Run("DELAY", func(t *testing.T) {
		// Huge: it must outlast three waits, two of them behind medium requests'
		// arrival, which took over 200 ms under make test's parallel packages.
		busy := schedGo(ctx, ts, "grpc", "delay", schedReq{name: "busy", cost: schedHuge, fill: 1, params: map[string]int64{"timeout": long}})
		schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("delay") == 1 })
		// Both run for a while, so their answers reach the client well apart.
		late := schedGo(ctx, ts, "http", "delay", schedReq{name: "timed-out", cost: schedMedium, fill: 2})
		schedWait(t, ts, "the request with the default timeout queued", func(m schedMetrics) bool { return m.inFlight("delay") == 2 })
		onTime := schedGo(ctx, ts, "grpc", "delay", schedReq{name: "on-time", cost: schedMedium, fill: 3, params: map[string]int64{"timeout": long}})
		schedWait(t, ts, "the request with a long timeout queued behind it", func(m schedMetrics) bool { return m.inFlight("delay") == 3 })
		schedStillRunning(t, busy, "the others were queued")

		for _, c := range []*schedCall{busy, late, onTime} {
			c.wantOK(t) // DELAY keeps a timed-out request: it still runs
		}
		if !onTime.end.Before(late.end) {
			t.Errorf("the timed-out request answered after %v, the later one within its timeout after %v; want the timed-out one last",
				late.latency(), onTime.latency())
		}
		m := schedScrape(t, ts)
		if got := m.dropped("delay", "timeout"); got != 0 {
			t.Errorf(`ferry_requests_dropped_total{reason="timeout"} = %d for DELAY, want 0`, got)
		}
		if st := schedStats(t, ts, "delay"); st.ExecutionCount != 3 {
			t.Errorf("%d executions, want 3", st.ExecutionCount)
		}
	})
}

// TestSchedulingCancelledRequestsNeverRun: requests whose client gives up (HTTP
// disconnect, gRPC cancel, gRPC deadline) while queued leave the queue without running
// and are counted.
func TestSchedulingCancelledRequestsNeverRun(t *testing.T) {
	ts := schedServer(t, map[string]string{"cancel": schedConfig("cancel", 1, 1, "")})
	ctx := t.Context()
	busy := schedGo(ctx, ts, "grpc", "cancel", schedReq{name: "busy", cost: schedHuge, fill: 1})
	schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("cancel") == 1 })

	httpCtx, cancelHTTP := context.WithCancel(ctx)
	defer cancelHTTP()
	grpcCtx, cancelGRPC := context.WithCancel(ctx)
	defer cancelGRPC()
	viaHTTP := schedGo(httpCtx, ts, "http", "cancel", schedReq{name: "http-cancelled", cost: schedFast, fill: 2})
	viaGRPC := schedGo(grpcCtx, ts, "grpc", "cancel", schedReq{name: "grpc-cancelled", cost: schedFast, fill: 3})
	schedWait(t, ts, "two requests queued", func(m schedMetrics) bool { return m.depth("cancel") == 2 })
	cancelHTTP()
	cancelGRPC()
	schedWait(t, ts, "both cancelled requests dropped", func(m schedMetrics) bool {
		return m.dropped("cancel", "cancelled") == 2 && m.depth("cancel") == 0
	})
	schedStillRunning(t, busy, "the cancelled requests left the queue")
	deadlineCtx, cancelDeadline := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelDeadline()
	expired := schedGo(deadlineCtx, ts, "grpc", "cancel", schedReq{name: "grpc-deadline", cost: schedFast, fill: 4})
	// The server sees the deadline itself (reason "deadline") unless the client's cancel,
	// sent when its own copy of the deadline fires, arrives first ("cancelled").
	schedWait(t, ts, "the request past its deadline dropped", func(m schedMetrics) bool {
		return m.dropped("cancel", "cancelled")+m.dropped("cancel", "deadline") == 3 && m.depth("cancel") == 0 && m.inFlight("cancel") == 1
	})
	schedStillRunning(t, busy, "the cancellations")

	if viaHTTP.wait(t); !errors.Is(viaHTTP.err, context.Canceled) {
		t.Errorf("cancelled HTTP request: %v; want context.Canceled", viaHTTP)
	}
	if viaGRPC.wait(t); viaGRPC.code != codes.Canceled {
		t.Errorf("cancelled gRPC request: %v; want CANCELLED", viaGRPC)
	}
	// The client's own deadline usually fires first; when the server's answer wins the
	// race it is UNAVAILABLE today (TestSchedulingDeadlineStatus checks the code).
	if expired.wait(t); expired.code != codes.DeadlineExceeded && expired.code != codes.Unavailable {
		t.Errorf("gRPC request past its deadline: %v; want DEADLINE_EXCEEDED", expired)
	}
	busy.wantOK(t)
	st := schedStats(t, ts, "cancel")
	if st.ExecutionCount != 1 || st.InferenceCount != 1 || st.InferenceStats.Success.Count != 1 || st.InferenceStats.Fail.Count != 3 {
		t.Errorf("stats: %d executions, %d items, %d succeeded, %d failed; want 1, 1, 1, 3 (cancelled requests never run)",
			st.ExecutionCount, st.InferenceCount, st.InferenceStats.Success.Count, st.InferenceStats.Fail.Count)
	}
	if got := schedScrape(t, ts).executions("cancel"); got != 1 {
		t.Errorf("ferry_batch_size_count = %d, want 1", got)
	}
	schedGo(ctx, ts, "http", "cancel", schedReq{name: "after", cost: schedFast, fill: 5}).wantOK(t)
	if st := schedStats(t, ts, "cancel"); st.ExecutionCount != 2 {
		t.Errorf("%d executions after one more request, want 2", st.ExecutionCount)
	}
}

// TestSchedulingDeadlineStatus: a gRPC request whose deadline passes while it waits in
// the queue ends with DEADLINE_EXCEEDED, gRPC's code for it (codeOf in
// internal/transport/v2grpc/errors.go maps context errors so). Over a socket the client's
// own timer usually answers first, so this calls the real gRPC handler directly to see
// the status the server gives.
func TestSchedulingDeadlineStatus(t *testing.T) {
	ts := schedServer(t, map[string]string{"deadline": schedConfig("deadline", 1, 1, "")})
	ctx := t.Context()
	busy := schedGo(ctx, ts, "grpc", "deadline", schedReq{name: "busy", cost: schedHuge, fill: 1})
	schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("deadline") == 1 })

	r := schedReq{name: "queued", cost: schedFast, fill: 2}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	req := &inference.ModelInferRequest{ModelName: "deadline", Id: r.name, RawInputContents: [][]byte{r.raw()},
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: r.shape()}}}
	_, err := ts.grpcAPI.ModelInfer(dctx, req)
	schedStillRunning(t, busy, "the queued request's deadline")
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("request whose deadline passed in the queue: %v; want code DeadlineExceeded", err)
	}
	busy.wantOK(t)
	if got := schedScrape(t, ts).dropped("deadline", "deadline"); got != 1 {
		t.Errorf(`ferry_requests_dropped_total{reason="deadline"} = %d, want 1`, got)
	}
}

// TestSchedulingPreserveOrdering: with two instances, a fast request sent after a slow
// one finishes computing first; with preserve_ordering its answer waits for the slow
// one's, without it the answer comes at once.
func TestSchedulingPreserveOrdering(t *testing.T) {
	ts := schedServer(t, map[string]string{
		"ordered":   schedConfig("ordered", 4, 2, "preserve_ordering: true"),
		"unordered": schedConfig("unordered", 4, 2, ""),
	})
	for _, model := range []string{"ordered", "unordered"} {
		t.Run(model, func(t *testing.T) {
			ctx := t.Context()
			// Twice the usual slow cost: on cores shared with other test packages the fast
			// requests must still finish well inside the slow one.
			slow := schedGo(ctx, ts, "grpc", model, schedReq{name: "slow", cost: 2 * schedVerySlow, fill: 1})
			schedWait(t, ts, "the slow request running", func(m schedMetrics) bool { return m.inFlight(model) == 1 })
			var fast []*schedCall
			for i := range 2 { // one at a time, so they arrive in order, and each runs on the idle instance
				fast = append(fast, schedGo(ctx, ts, []string{"http", "grpc"}[i], model,
					schedReq{name: fmt.Sprint("fast", i), cost: schedFast, fill: float32(i + 2)}))
				schedWait(t, ts, fmt.Sprintf("fast request %d executed", i), func(m schedMetrics) bool { return m.executions(model) >= i+1 })
			}
			computed := time.Now() // both fast requests have run; the slow one is still running
			schedStillRunning(t, slow, "the fast requests ran")

			slow.wantOK(t)
			for _, c := range fast {
				c.wantOK(t)
			}
			if model == "ordered" {
				for _, c := range fast {
					// Released just after the slow one, so allow for the two answers
					// crossing the sockets side by side.
					if !c.end.After(computed) || c.end.Before(slow.end.Add(-50*time.Millisecond)) {
						t.Errorf("%s answered %v before the slow request sent before it; want after it (preserve_ordering)",
							c.req.name, slow.end.Sub(c.end))
					}
				}
				if fast[1].end.Before(fast[0].end.Add(-50 * time.Millisecond)) {
					t.Errorf("fast1 answered %v before fast0", fast[0].end.Sub(fast[1].end))
				}
			} else {
				for _, c := range fast {
					if !c.end.Before(slow.end) {
						t.Errorf("%s answered after the slow request without preserve_ordering; the test's timing assumption fails", c.req.name)
					}
				}
			}
		})
	}
}

// schedStats reads a model's statistics (the fields these tests use).
func schedStats(t *testing.T, ts *testServer, model string) schedStatsJSON {
	t.Helper()
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/"+model+"/stats", "", nil)
	var s struct {
		ModelStats []schedStatsJSON `json:"model_stats"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &s) != nil || len(s.ModelStats) != 1 {
		t.Fatalf("stats of %s: %d %s", model, code, b)
	}
	return s.ModelStats[0]
}

type schedDuration struct {
	Count uint64 `json:"count"`
	NS    uint64 `json:"ns"`
}

type schedStatsJSON struct {
	InferenceCount uint64 `json:"inference_count"`
	ExecutionCount uint64 `json:"execution_count"`
	InferenceStats struct {
		Success schedDuration `json:"success"`
		Fail    schedDuration `json:"fail"`
		Queue   schedDuration `json:"queue"`
	} `json:"inference_stats"`
	BatchStats []struct {
		BatchSize uint64 `json:"batch_size"`
	} `json:"batch_stats"`
}
