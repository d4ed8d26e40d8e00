package inferlog

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func closeLogger(t *testing.T, l *Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func counter(t *testing.T, l *Logger, name, sink string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == sink {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{sink=%q}", name, sink)
	return 0
}

func TestConfigErrorsAreAllNamed(t *testing.T) {
	_, err := New(Config{Sample: 2, Format: "csv", Buffer: -1, Kafka: &KafkaConfig{Timeout: Duration(time.Millisecond)}, HTTP: &HTTPConfig{URL: "ftp://x"}}, nil)
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"sample: must be in (0, 1], got 2", `format: want "jsonl" or "parquet", got "csv"`,
		"buffer: must be > 0, got -1", "kafka.brokers", "kafka.topic", "kafka.timeout: must be at least 1s, got 1ms", `http.url: want http://HOST[:PORT]/PATH or https://..., got "ftp://x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nwant it to name %q", err, want)
		}
	}
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "no sink") {
		t.Errorf("New(Config{}) = %v, want no sink", err)
	}
}

func TestSamplingIsDeterministicPerClientID(t *testing.T) {
	l := &Logger{sampleBelow: uint64(0.25 * (1 << 64))}
	kept := 0
	const n = 20000
	for i := range n {
		r := record("m", "1", "req-"+strconv.Itoa(i), time.Now())
		a, b := l.sampled(r, uint64(i)), l.sampled(r, uint64(i+n))
		if a != b {
			t.Fatalf("client id %s sampled %v then %v", r.ID, a, b)
		}
		if a {
			kept++
		}
	}
	if f := float64(kept) / n; f < 0.23 || f > 0.27 {
		t.Fatalf("sampled %.3f of requests, want about 0.25", f)
	}
}

func TestFileSinkRollsAndQueryFilters(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Config{Dir: dir, MaxFileBytes: 4 << 10, Buffer: 10000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for i := range 600 {
		m := []string{"a", "b/c"}[i%2]
		l.Finished(record(m, strconv.Itoa(1+i%3), "id-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Second)))
	}
	closeLogger(t, l)
	rd := rolledFiles(t, dir, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    Query
		want int
	}{
		{"everything", Query{}, 600},
		{"one model, escaped in file names", Query{Model: "b/c"}, 300},
		{"model and version", Query{Model: "a", Version: "1"}, 100},
		{"a time window", Query{Since: t0.Add(100 * time.Second), Until: t0.Add(199 * time.Second)}, 100},
		{"ids, request or client", Query{IDs: []string{"id-5", "id-17", "nope"}}, 2},
		{"a limit", Query{Model: "a", Limit: 7}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rd.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("Query(%+v) = %d entries, want %d", tc.q, len(got), tc.want)
			}
			for _, e := range got {
				if !newMatcher(tc.q).match(&e) {
					t.Fatalf("Query(%+v) returned %+v", tc.q, e)
				}
			}
		})
	}
	got, _ := rd.Query(ctx, Query{IDs: []string{"id-17"}})
	if got[0].RequestID == "" || got[0].Model != "b/c" || string(got[0].Inputs[0].Data) != "[1,2.5,-3]" {
		t.Fatalf("entry id-17 = %+v", got[0])
	}
	byReq, _ := rd.Query(ctx, Query{IDs: []string{got[0].RequestID}})
	if len(byReq) != 1 || byReq[0].ClientRequestID != "id-17" {
		t.Fatalf("lookup by request id %s = %+v", got[0].RequestID, byReq)
	}
}

// TestTenThousandIDsIsOneScan: a lookup of 10,000 ids reads each entry once.
func TestTenThousandIDsIsOneScan(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Config{Dir: dir, Buffer: 20000, MaxFileBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		l.Finished(record("m", "1", "id-"+strconv.Itoa(i), time.Now()))
	}
	closeLogger(t, l)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(2*i)
	}
	rd, _ := Open(dir)
	start := time.Now()
	got, m, err := rd.query(context.Background(), Query{IDs: ids})
	if err != nil || len(got) != len(ids) {
		t.Fatalf("10,000 ids: %d entries, %v", len(got), err)
	}
	t.Logf("10,000 ids over %d entries: %v", n, time.Since(start))
	if m.read != n {
		t.Fatalf("10,000 ids read %d entries, want each of the %d once", m.read, n)
	}
	for i, e := range got {
		if e.ClientRequestID != ids[i] {
			t.Fatalf("entry %d = %s, want %s (write order)", i, e.ClientRequestID, ids[i])
		}
	}
}

func TestParquetFilesReadBack(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Config{Dir: dir, Format: FormatParquet, Redact: []string{"y"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for i := range 50 {
		l.Finished(record("m", "1", "id-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Millisecond)))
	}
	closeLogger(t, l)
	names, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(names) != 1 {
		t.Fatalf("parquet files %v, want 1", names)
	}
	rd, _ := Open(dir)
	got, err := rd.Query(context.Background(), Query{Since: t0.Add(10 * time.Millisecond), Limit: 5})
	if err != nil || len(got) != 5 {
		t.Fatalf("Query = %d entries, %v; want 5", len(got), err)
	}
	e := got[0]
	if e.ClientRequestID != "id-10" || !e.Timestamp.Equal(t0.Add(10*time.Millisecond)) || string(e.Inputs[0].Data) != "[1,2.5,-3]" ||
		string(e.Outputs[0].Data) != `"[redacted]"` || e.TraceID == "" || e.Status != "ok" {
		t.Fatalf("entry = %+v", e)
	}
}

// blockingSink accepts nothing until its context ends, as a hung network sink would.
type blockingSink struct{ calls sync.WaitGroup }

func (b *blockingSink) name() string { return "stuck" }
func (b *blockingSink) write(ctx context.Context, batch []*capture) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
func (b *blockingSink) tick(time.Time)                  {}
func (b *blockingSink) close(ctx context.Context) error { return nil }

func TestBlockingSinkCostsServingNothing(t *testing.T) {
	dir := t.TempDir()
	const buffer = 256
	cfg := Config{Dir: dir, Buffer: buffer}.withDefaults()
	files, err := newFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLogger(cfg, slog.New(slog.DiscardHandler), files, []sink{files, &blockingSink{}})
	const n = 5000
	var inFinished time.Duration
	for i := range n {
		r := record("m", "1", "id-"+strconv.Itoa(i), time.Now())
		start := time.Now()
		l.Finished(r)
		inFinished += time.Since(start)
		if i%32 == 0 {
			time.Sleep(time.Millisecond) // let the file sink keep up; the stuck one cannot
		}
	}
	perCall := inFinished / n
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = l.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "sink stuck") {
		t.Fatalf("Close with a stuck sink = %v, want it named", err)
	}
	stuckDropped := counter(t, l, "ferry_inference_log_dropped_total", "stuck")
	written := counter(t, l, "ferry_inference_log_records_total", "file")
	fileDropped := counter(t, l, "ferry_inference_log_dropped_total", "file")
	captureDropped := counter(t, l, "ferry_inference_log_dropped_total", SinkCapture)
	t.Logf("stuck sink dropped %v; file wrote %v, dropped %v; capture dropped %v", stuckDropped, written, fileDropped, captureDropped)
	// All but its queue and the one batch its write holds (as large as the sink had
	// queued when it took it, under load up to maxBatch).
	if stuckDropped < n-captureDropped-buffer-maxBatch {
		t.Errorf("stuck sink dropped %v of %d, want all but its queue and one batch", stuckDropped, n)
	}
	if written+fileDropped+captureDropped != n || written < n*9/10 {
		t.Errorf("file sink wrote %v (dropped %v, capture %v) of %d", written, fileDropped, captureDropped, n)
	}
	got, _ := l.Query(context.Background(), Query{})
	if float64(len(got)) != written {
		t.Errorf("Query found %d entries, the file sink counted %v", len(got), written)
	}
	if perCall > 50*time.Microsecond { // ~1µs without the race detector
		t.Errorf("Finished took %v per call with a stuck sink", perCall)
	}
}

func TestFinishedAfterCloseIsDropped(t *testing.T) {
	l, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeLogger(t, l)
	l.Finished(record("m", "1", "late", time.Now()))
	if got := counter(t, l, "ferry_inference_log_dropped_total", SinkCapture); got != 1 {
		t.Fatalf("dropped{capture} after a late Finished = %v, want 1", got)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMetricsExposition(t *testing.T) {
	l, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Finished(record("m", "1", "a", time.Now()))
	closeLogger(t, l)
	want := `
# HELP ferry_inference_log_records_total Inference log entries a sink delivered.
# TYPE ferry_inference_log_records_total counter
ferry_inference_log_records_total{sink="file"} 1
`
	if err := testutil.CollectAndCompare(l.Collector(), strings.NewReader(want), "ferry_inference_log_records_total"); err != nil {
		t.Fatal(err)
	}
}

// TestQueryWhileWriting: queries during writing and rolling (the live file included)
// never fail, never see an entry twice, and see more as time goes on.
func TestQueryWhileWriting(t *testing.T) {
	l, err := New(Config{Dir: t.TempDir(), MaxFileBytes: 8 << 10, Buffer: 8192}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			l.Finished(record("m", "1", "id-"+strconv.Itoa(i), time.Now()))
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	last := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		got, err := l.Query(context.Background(), Query{Model: "m"})
		if err != nil {
			t.Fatalf("Query while writing: %v", err)
		}
		seen := map[string]bool{}
		for _, e := range got {
			if seen[e.RequestID] {
				t.Fatalf("Query while writing returned %s twice", e.RequestID)
			}
			seen[e.RequestID] = true
		}
		if len(got) < last {
			t.Fatalf("Query found %d entries after %d", len(got), last)
		}
		last = len(got)
	}
	closeLogger(t, l)
	got, err := l.Query(context.Background(), Query{})
	if err != nil || len(got) != n {
		t.Fatalf("after Close: %d entries, %v; want %d", len(got), err, n)
	}
}

// TestEntryOutlivesTheRecord: core reuses the record and a transport its buffers once
// Finished returns; the entry holds what the request had.
func TestEntryOutlivesTheRecord(t *testing.T) {
	l, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := record("m", "1", "kept", time.Now())
	l.Finished(r)
	for _, ts := range [][]*tensor.Tensor{r.Inputs, r.Outputs} {
		for _, x := range ts {
			clear(x.Data)
			x.Shape[0] = 99
		}
	}
	*r = core.Record{}
	closeLogger(t, l)
	got, err := l.Query(context.Background(), Query{IDs: []string{"kept"}})
	if err != nil || len(got) != 1 {
		t.Fatalf("Query = %v, %v", got, err)
	}
	if in, out := got[0].Inputs[0], got[0].Outputs[0]; string(in.Data) != "[1,2.5,-3]" || in.Shape[0] != 1 || string(out.Data) != "[0.75]" || got[0].Model != "m" {
		t.Fatalf("entry after the record was reused = %+v", got[0])
	}
}

// TestRetentionAndSizeBoundPruneRolledFiles: files whose entries are older than the
// retention go at the next roll, and the oldest go while the directory holds more
// than max_total_bytes; the newest entries stay readable.
func TestRetentionAndSizeBoundPruneRolledFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"retention", Config{Retention: Duration(time.Hour)}},
		{"size", Config{MaxTotalBytes: 16 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tc.cfg
			cfg.Dir, cfg.MaxFileBytes, cfg.Buffer = dir, 4<<10, 10000
			l, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-3 * time.Hour) // entries three hours old, then current ones
			for i := range 400 {
				at := old.Add(time.Duration(i) * time.Millisecond)
				if i >= 200 {
					at = time.Now()
				}
				l.Finished(record("m", "1", "id-"+strconv.Itoa(i), at))
			}
			closeLogger(t, l)
			rd, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			es, err := rd.Query(context.Background(), Query{})
			if err != nil {
				t.Fatal(err)
			}
			var size int64
			names, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, n := range names {
				st, _ := os.Stat(n)
				size += st.Size()
			}
			last := es[len(es)-1].ClientRequestID
			t.Logf("%d entries left in %d files (%d bytes), the last %s", len(es), len(names), size, last)
			if last != "id-399" || len(es) >= 400 || len(es) < 20 {
				t.Fatalf("%d entries left, the last %s: want the newest kept and the oldest pruned", len(es), last)
			}
			if tc.cfg.Retention > 0 && es[0].Timestamp.Before(time.Now().Add(-time.Hour)) {
				t.Errorf("an entry of %v is still there past the hour's retention", es[0].Timestamp)
			}
			if tc.cfg.MaxTotalBytes > 0 && size > tc.cfg.MaxTotalBytes+8<<10 {
				t.Errorf("%d bytes left, want about %d", size, tc.cfg.MaxTotalBytes)
			}
		})
	}
}

// TestRollDoesNotStopTheWriter: a rolled file's sync runs on its own goroutine, so a
// slow disk stops neither the runner nor the next file's writes; close waits for it,
// and every entry is in a rolled file once.
func TestRollDoesNotStopTheWriter(t *testing.T) {
	dir, cfg, s := smallFileSink(t)
	release := make(chan struct{})
	var synced atomic.Int32
	s.sync = func(f *os.File) error {
		<-release // a disk that does not answer until the test says so
		synced.Add(1)
		return f.Sync()
	}
	l := newLogger(cfg, slog.New(slog.DiscardHandler), s, []sink{s})
	const n = 400
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range n {
		l.Finished(record("m", "1", "id-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Millisecond)))
		if i%50 == 0 {
			time.Sleep(10 * time.Millisecond) // within the queue: nothing may drop
		}
	}
	// Every entry reaches a file while no sync has returned: the writes did not wait.
	deadline := time.Now().Add(20 * time.Second)
	for written(t, dir) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries in the files while the rolled files' syncs hang: the writer waited on them", written(t, dir), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if synced.Load() != 0 {
		t.Fatal("a sync returned before the test released them")
	}
	close(release)
	closeLogger(t, l)
	rd := rolledFiles(t, dir, func(files int) {
		if int(synced.Load()) != files {
			t.Fatalf("%d files, %d synced: want each synced", files, synced.Load())
		}
	})
	got, err := rd.Query(context.Background(), Query{})
	if err != nil || len(got) != n {
		t.Fatalf("Query: %d entries, %v; want %d", len(got), err, n)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ClientRequestID] {
			t.Fatalf("entry %s twice", e.ClientRequestID)
		}
		seen[e.ClientRequestID] = true
	}
	if d := l.files.retired(); d != nil {
		t.Fatal(d)
	}
}

// written counts the lines in dir's files.
func written(t *testing.T, dir string) int {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	lines := 0
	for _, nm := range names {
		b, err := os.ReadFile(nm)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte{'\n'})
	}
	return lines
}

// rolledFiles checks that a closed logger left several files in dir, all with rolled
// names (check, when given, sees their count), and opens dir for reading.
func rolledFiles(t *testing.T, dir string, check func(files int)) *Reader {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) < 4 {
		t.Fatalf("files %v: want the 4 KiB cap to roll several", names)
	}
	for _, n := range names {
		if lf, ok := parseName(filepath.Base(n)); !ok || lf.open {
			t.Fatalf("file %s after Close: want a rolled name", n)
		}
	}
	if check != nil {
		check(len(names))
	}
	rd, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// smallFileSink is a file sink in a new folder whose files roll every 4 KiB.
func smallFileSink(t *testing.T) (string, Config, *fileSink) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxFileBytes: 4 << 10}.withDefaults()
	s, err := newFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg, s
}

// TestBatchThatRollsLeavesTheRolledFileAlone: a batch that fills a file part way
// through rolls it (its finishing goroutine flushes and closes it) and goes on in a new
// file; the batch's closing flush must not touch the rolled file. With -race, flushing
// it raced with the finishing goroutine's (seen in a fresh-clone make test).
func TestBatchThatRollsLeavesTheRolledFileAlone(t *testing.T) {
	dir, cfg, s := smallFileSink(t)
	now := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	cp := capturer{maxBytes: cfg.MaxPayloadBytes, redact: map[string]struct{}{}}
	entry := func(i int) *capture {
		c := &capture{seq: uint64(i + 1)}
		cp.fill(c, record("m", "1", "id-"+strconv.Itoa(i), now))
		c.setRequestID(1)
		c.line = appendEntry(nil, c)
		return c
	}
	// The first batch leaves the file unflushed (dirty since now) and nearly full.
	var first []*capture
	i := 0
	for size := 0; size < 3<<10; i++ {
		c := entry(i)
		size += len(c.line)
		first = append(first, c)
	}
	if n, err := s.write(context.Background(), first); err != nil || n != len(first) {
		t.Fatalf("first batch: %d of %d, %v", n, len(first), err)
	}
	// Past flushEvery, a batch that fills the file and rolls it part way through: its
	// first entries go to the old file, the rest to a new one.
	now = now.Add(2 * flushEvery)
	var second []*capture
	for range 2 * len(first) {
		second = append(second, entry(i))
		i++
	}
	if n, err := s.write(context.Background(), second); err != nil || n != len(second) {
		t.Fatalf("second batch: %d of %d, %v", n, len(second), err)
	}
	if err := s.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rd, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rd.Query(context.Background(), Query{})
	if err != nil || len(got) != i {
		t.Fatalf("Query: %d entries, %v; want %d", len(got), err, i)
	}
}
