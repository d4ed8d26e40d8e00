package inferlog

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/core"
)

// ceServer is a CloudEvents receiver: it counts events by type and ce-id, and fails
// the first attempt of every 200th event so the sink's retries are exercised.
type ceServer struct {
	mu     sync.Mutex
	events map[string]map[string]int // type -> ce-id -> count
	bodies map[string]string         // "type id" -> body
	hdrs   http.Header               // the last request's
	seen   map[string]bool
	n      int
}

func newCEServer(t *testing.T) (*ceServer, *httptest.Server) {
	s := &ceServer{events: map[string]map[string]int{}, bodies: map[string]string{}, seen: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *ceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	typ, id := r.Header.Get("Ce-Type"), r.Header.Get("Ce-Id")
	s.mu.Lock()
	defer s.mu.Unlock()
	key := typ + " " + id
	s.n++
	if !s.seen[key] && s.n%200 == 0 {
		s.seen[key] = true
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if s.events[typ] == nil {
		s.events[typ] = map[string]int{}
	}
	s.events[typ][id]++
	s.bodies[key] = string(b)
	s.hdrs = r.Header.Clone()
	w.WriteHeader(http.StatusAccepted)
}

// consume reads every record of topic from the start, stopping once want arrived (or
// after a quiet spell, so a duplicate past want would still be counted).
func consume(t *testing.T, brokers []string, topic string, want int) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys := map[string]int{}
	total := 0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			var e Entry
			if err := json.Unmarshal(r.Value, &e); err != nil || e.RequestID != string(r.Key) {
				t.Errorf("record key %s value %s: not its entry (%v)", r.Key, r.Value, err)
			}
			keys[string(r.Key)]++
			got++
		})
		total += got
		if total >= want && got == 0 {
			break
		}
	}
	return keys
}

// TestCloseDeliversEverySampledRequestOnceToEachSink: many goroutines log thousands of
// requests each; after Close every sink (files, Kafka, CloudEvents) holds each sampled
// request exactly once.
func TestCloseDeliversEverySampledRequestOnceToEachSink(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "inferlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ce, srv := newCEServer(t)
	const goroutines, each = 8, 2000
	dir := t.TempDir()
	l, err := New(Config{Sample: 0.5, Dir: dir, Buffer: goroutines * each, MaxFileBytes: 1 << 20,
		Kafka: &KafkaConfig{Brokers: kc.ListenAddrs(), Topic: "inferlog"},
		HTTP:  &HTTPConfig{URL: srv.URL + "/events", Retries: 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := record("m", "1", strconv.Itoa(g)+"-"+strconv.Itoa(i), time.Now())
				if i%5 == 0 {
					r.Err, r.Outputs = core.ErrInvalid, nil
				}
				l.Finished(r)
			}
		})
	}
	wg.Wait()
	closeLogger(t, l)

	sampled := map[string]bool{} // client id -> sampled, as the logger decides
	for g := range goroutines {
		for i := range each {
			id := strconv.Itoa(g) + "-" + strconv.Itoa(i)
			sampled[id] = l.sampled(record("m", "1", id, time.Now()), 0)
		}
	}
	want, wantResponses := 0, 0
	for id, s := range sampled {
		if s {
			want++
			if i, _ := strconv.Atoi(id[len(id)-1:]); i%5 != 0 {
				wantResponses++
			}
		}
	}
	if want < goroutines*each/3 || want > goroutines*each*2/3 {
		t.Fatalf("%d of %d sampled at 0.5", want, goroutines*each)
	}
	if d := counter(t, l, "ferry_inference_log_dropped_total", SinkCapture); d != 0 {
		t.Fatalf("capture dropped %v", d)
	}

	entries, err := l.Query(context.Background(), Query{})
	if err != nil {
		t.Fatal(err)
	}
	byReq := map[string]string{} // request id -> client id
	for _, e := range entries {
		if !sampled[e.ClientRequestID] {
			t.Fatalf("file holds %s, which is not sampled", e.ClientRequestID)
		}
		if _, dup := byReq[e.RequestID]; dup {
			t.Fatalf("file holds request %s twice", e.RequestID)
		}
		byReq[e.RequestID] = e.ClientRequestID
	}
	if len(entries) != want {
		t.Fatalf("file holds %d entries, want %d", len(entries), want)
	}

	keys := consume(t, kc.ListenAddrs(), "inferlog", want)
	if len(keys) != want {
		t.Errorf("kafka holds %d distinct request ids, want %d", len(keys), want)
	}
	for k, n := range keys {
		if n != 1 || byReq[k] == "" {
			t.Fatalf("kafka holds request %s %d times (in the file: %v)", k, n, byReq[k] != "")
		}
	}

	ce.mu.Lock()
	defer ce.mu.Unlock()
	for typ, wantN := range map[string]int{CETypeRequest: want, CETypeResponse: wantResponses} {
		if len(ce.events[typ]) != wantN {
			t.Errorf("%s events for %d ids, want %d", typ, len(ce.events[typ]), wantN)
		}
		for id, n := range ce.events[typ] {
			if n != 1 || byReq[id] == "" {
				t.Fatalf("%s event %s arrived %d times (in the file: %v)", typ, id, n, byReq[id] != "")
			}
		}
	}
	for _, name := range []string{"file", "kafka", "http"} {
		if got := counter(t, l, "ferry_inference_log_records_total", name); got != float64(want) {
			t.Errorf("records_total{sink=%s} = %v, want %d", name, got, want)
		}
	}
}

func TestCloudEventsFormat(t *testing.T) {
	ce, srv := newCEServer(t)
	l, err := New(Config{HTTP: &HTTPConfig{URL: srv.URL, Source: "ferry-test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := record("iris", "3", "c1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.Route = "weight"
	l.Finished(r)
	closeLogger(t, l)
	ce.mu.Lock()
	defer ce.mu.Unlock()
	var id string
	for k := range ce.events[CETypeResponse] {
		id = k
	}
	if len(id) != 32 || ce.events[CETypeRequest][id] != 1 {
		t.Fatalf("events %v: want a request and a response sharing a 32-digit ce-id", ce.events)
	}
	h := ce.hdrs // the response's, sent second
	for k, want := range map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "ferry-test", "Ce-Inferenceservicename": "iris",
		"Ce-Modelversion": "3", "Ce-Endpoint": "weight", "Ce-Time": "2026-01-02T03:04:05.0015Z", "Content-Type": "application/json",
		"Ce-Traceid": "4bf92f3577b34da6a3ce929d0e0e4736"} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	for typ, want := range map[string]string{
		CETypeRequest:  `{"id":"c1","inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2.5,-3]}]}`,
		CETypeResponse: `{"model_name":"iris","model_version":"3","id":"c1","outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[0.75]}]}`,
	} {
		if got := ce.bodies[typ+" "+id]; got != want {
			t.Errorf("%s body = %s\nwant %s", typ, got, want)
		}
	}
}

func TestHTTPSinkGivesUpAfterRetries(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	l, err := New(Config{HTTP: &HTTPConfig{URL: srv.URL, Retries: 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Finished(record("m", "1", "", time.Now()))
	closeLogger(t, l)
	if got := counter(t, l, "ferry_inference_log_failed_total", "http"); got != 1 {
		t.Errorf("failed_total{http} = %v, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 3 {
		t.Errorf("server saw %d attempts, want 1 + 2 retries", n)
	}
}

// TestKafkaDownLosesOnlyItsEntries: with the cluster gone, the Kafka sink's entries
// fail after the delivery timeout and are counted; the file sink still gets all of
// them and Close returns within its deadline.
func TestKafkaDownLosesOnlyItsEntries(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "inferlog"))
	if err != nil {
		t.Fatal(err)
	}
	brokers := kc.ListenAddrs()
	kc.Close()
	l, err := New(Config{Dir: t.TempDir(), Kafka: &KafkaConfig{Brokers: brokers, Topic: "inferlog", Timeout: Duration(time.Second)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		l.Finished(record("m", "1", strconv.Itoa(i), time.Now()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_ = l.Close(ctx) // the error, if any, names the Kafka sink
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v with Kafka down", took)
	}
	if got := counter(t, l, "ferry_inference_log_failed_total", "kafka"); got != 10 {
		t.Errorf("failed_total{kafka} = %v, want 10", got)
	}
	if got := counter(t, l, "ferry_inference_log_records_total", "file"); got != 10 {
		t.Errorf("records_total{file} = %v, want 10", got)
	}
}
