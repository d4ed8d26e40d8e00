package drift

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// wideProfile is a baseline of f numeric features "x[j]" ~ N(j, 1).
func wideProfile(f, n int) *Profile {
	b := newBuilder(ProfileOptions{})
	rng := rand.New(rand.NewPCG(1, 3))
	for range n {
		b.rows++
		for j := range f {
			b.number("x["+strconv.Itoa(j)+"]", rng.NormFloat64()+float64(j))
		}
	}
	p, _ := b.profile()
	return p
}

// wideRecord is one request of rows rows of f FP32 features.
func wideRecord(rng *rand.Rand, rows, f int) *core.Record {
	x := &tensor.Tensor{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{int64(rows), int64(f)}}
	for range rows {
		for j := range f {
			x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(rng.NormFloat64()+float64(j))))
		}
	}
	return &core.Record{Model: "m", Inputs: []*tensor.Tensor{x}, Items: rows}
}

// A million rows of 100 features (a tenth under -race) leave the state exactly as
// large as one window did.
func TestStateSizeIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a million rows")
	}
	const features, perRecord = 100, 100
	records := 10000 // a million rows
	if raceEnabled {
		records = 1000
	}
	p := wideProfile(features, 5000)
	rng := rand.New(rand.NewPCG(4, 4))
	recs := make([]*core.Record, 8)
	for i := range recs {
		recs[i] = wideRecord(rng, perRecord, features)
	}
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Window: WindowConfig{Count: 10000}, MaxRowsPerSecond: -1, Models: map[string]ModelConfig{"m": {}}}, nil)
		m.SetBaseline("m", p)
		run(t, m)
		var first int
		var heap0 runtime.MemStats
		for i := range records {
			m.Finished(recs[i%len(recs)])
			if i%256 == 255 {
				settle()
			}
			if i == records/4 { // windows allocated and the queue's buffers grown
				settle()
				first = m.StateBytes("m")
				runtime.GC()
				runtime.ReadMemStats(&heap0)
			}
		}
		settle()
		r, _ := m.Report("m")
		runtime.GC()
		var heap1 runtime.MemStats
		runtime.ReadMemStats(&heap1)
		last := m.StateBytes("m")
		t.Logf("state for %d features: %d bytes (open + last closed window); heap %d → %d bytes", features, last, heap0.HeapAlloc, heap1.HeapAlloc)
		if last != first {
			t.Errorf("state grew from %d to %d bytes over %d rows", first, last, records*perRecord)
		}
		if r.Dropped != 0 || r.Rows != 10000 || r.Evaluated != features {
			t.Errorf("report: dropped %d rows %d evaluated %d, want 0, 10000, %d", r.Dropped, r.Rows, r.Evaluated, features)
		}
		if grow := int64(heap1.HeapAlloc) - int64(heap0.HeapAlloc); grow > 4<<20 {
			t.Errorf("heap grew by %d bytes over %d rows", grow, records*perRecord)
		}
	})
}

// BenchmarkFinished is the cost the tap adds to a request of one row: the lock-free
// plan read, a batch from the free list, the copy of the watched tensor and the queue
// send. The benchmark itself takes each batch back off the queue (a channel receive
// and a free-list push, counted in ns/op) so no record is dropped: the measured path
// is the one that copies.
func BenchmarkFinished(b *testing.B) {
	for _, f := range []int{16, 100, 256} {
		b.Run(strconv.Itoa(f)+"_features", func(b *testing.B) {
			m, _ := New(Config{Window: WindowConfig{Count: 1000}, Models: map[string]ModelConfig{"m": {}}}, nil)
			m.SetBaseline("m", wideProfile(f, 2000))
			rec := wideRecord(rand.New(rand.NewPCG(1, 1)), 1, f)
			b.ReportAllocs()
			for b.Loop() {
				m.Finished(rec)
				m.free.put(<-m.work)
			}
			if d := m.model("m").dropped.Load(); d != 0 {
				b.Fatalf("%d rows dropped: the benchmark measured the drop path", d)
			}
		})
	}
}

// BenchmarkBinRow is the worker's cost per row: decoding and binning every feature.
func BenchmarkBinRow(b *testing.B) {
	for _, f := range []int{16, 100, 256} {
		b.Run(strconv.Itoa(f)+"_features", func(b *testing.B) {
			m, _ := New(Config{Window: WindowConfig{Count: 1 << 40}, Models: map[string]ModelConfig{"m": {}}}, nil)
			m.SetBaseline("m", wideProfile(f, 2000))
			md := m.model("m")
			bt := new(batch)
			bt.fill(md, md.plan.Load(), wideRecord(rand.New(rand.NewPCG(1, 1)), 64, f))
			b.ReportAllocs()
			for b.Loop() {
				md.ingest(m, bt)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/row")
		})
	}
}

// BenchmarkBinRowCold is BenchmarkBinRow as a server sees it: one-row records, 20
// of them per drain (2000 rows/s drained every 10 ms), with 4 MiB of other work
// between drains evicting the feature tables from the caches (not timed). Run it
// with a fixed count, as the untimed work would stretch a timed one:
//
//	go test -run=NONE -bench=BinRowCold -benchtime=20000x ./internal/monitor/drift/
func BenchmarkBinRowCold(b *testing.B) {
	const perDrain = 20
	other := make([]byte, 4<<20)
	for _, f := range []int{16, 256} {
		b.Run(strconv.Itoa(f)+"_features", func(b *testing.B) {
			m, _ := New(Config{Window: WindowConfig{Count: 1 << 40}, Models: map[string]ModelConfig{"m": {}}}, nil)
			m.SetBaseline("m", wideProfile(f, 2000))
			md := m.model("m")
			rng := rand.New(rand.NewPCG(1, 1))
			bts := make([]*batch, 64)
			for i := range bts {
				bts[i] = new(batch)
				bts[i].fill(md, md.plan.Load(), wideRecord(rng, 1, f))
			}
			n := 0
			for b.Loop() {
				md.ingest(m, bts[n%len(bts)])
				if n++; n%perDrain == 0 {
					b.StopTimer()
					clear(other)
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkReport is the cost of comparing a closed window of 1000 rows with a
// 2000-row baseline for 256 numeric features, by method.
func BenchmarkReport(b *testing.B) {
	for _, method := range []string{"", "ks", "psi"} {
		b.Run(method, func(b *testing.B) {
			m, _ := New(Config{Window: WindowConfig{Count: 1000}, Models: map[string]ModelConfig{
				"m": {Features: map[string]FeatureConfig{"*": {Method: method}}}}}, nil)
			m.SetBaseline("m", wideProfile(256, 2000))
			md := m.model("m")
			bt := new(batch)
			bt.fill(md, md.plan.Load(), wideRecord(rand.New(rand.NewPCG(1, 1)), 1000, 256))
			md.ingest(m, bt)
			for b.Loop() {
				md.cache = nil
				if r, _ := m.Report("m"); r.Evaluated != 256 {
					b.Fatalf("evaluated %d features, want 256", r.Evaluated)
				}
			}
		})
	}
}
