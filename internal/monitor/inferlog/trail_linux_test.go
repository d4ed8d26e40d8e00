package inferlog

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPageTrailDropsWrittenPages appends 64 MB in flushes of 1 MB, advancing a trail as
// the file sink does, then syncs (so every page is clean) and advances once more: the
// pages more than trailKeep+trailChunk behind the end are out of the page cache, the
// last trailKeep are still in it; done drops the rest.
func TestPageTrailDropsWrittenPages(t *testing.T) {
	dir := t.TempDir()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 'x'
	}
	dropsPages(t, dir, chunk)
	f, err := os.Create(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tr pageTrail
	var size int64
	for range 64 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		size += int64(len(chunk))
		tr.advance(f, size)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// The drops so far were advice on pages possibly still being written; after the
	// sync, advise the same ranges again from a fresh trail to see the effect.
	tr = pageTrail{}
	tr.advance(f, size)
	old, recent := resident(t, f, 0, size-trailKeep-trailChunk), resident(t, f, size-trailKeep, size)
	if old > 0.01 || recent < 0.99 {
		t.Fatalf("resident in the page cache: %.0f%% of the old part (want none), %.0f%% of the last %d MB (want all)", 100*old, 100*recent, trailKeep>>20)
	}
	tr.done(f)
	if all := resident(t, f, 0, size); all > 0.01 {
		t.Fatalf("after done, %.0f%% of the file is still cached", 100*all)
	}
}

// dropsPages skips the test where the file system keeps a file's pages cached after
// posix_fadvise(DONTNEED) on clean pages (tmpfs, whose pages are the file): there the
// trail can only advise.
func dropsPages(t *testing.T, dir string, chunk []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Skipf("posix_fadvise: %v", err)
	}
	if r := resident(t, f, 0, int64(len(chunk))); r > 0.5 {
		t.Skipf("the file system under %s keeps %.0f%% of a synced file's pages after posix_fadvise(DONTNEED) (tmpfs does): nothing to check", dir, 100*r)
	}
}

// resident is the share of the pages of f in [from, to) that are in the page cache.
func resident(t *testing.T, f *os.File, from, to int64) float64 {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (st.Size()+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	in, n := 0, 0
	for p := from / page; p < (to+page-1)/page; p++ {
		n++
		in += int(vec[p] & 1)
	}
	return float64(in) / float64(n)
}

// BenchmarkPageTrail is the machine's CPU (all of it: this process, the kernel's
// writeback threads) to append 512 MB to a file in 64 KB writes with a flush every MB,
// with the trail the file sink keeps and without, the two alternating (first one, then
// the other, then the reverse order), the sync to disk included. It writes 1 GB a
// round and keeps the files until it ends:
//
//	go test -run=NONE -bench=PageTrail -benchtime=4x ./internal/monitor/inferlog/
func BenchmarkPageTrail(b *testing.B) {
	dir := b.TempDir()
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = 'a' + byte(i%26)
	}
	files := 0
	write := func(trail bool) float64 {
		// Each its own file, kept, as the sink's rolled files are: removing one would
		// free its cached pages for the next to reuse, which a log that keeps its files
		// does not get.
		files++
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(files)+".jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		busy0 := machineBusy(b)
		var tr pageTrail
		var size int64
		for size < 512<<20 {
			if _, err := f.Write(block); err != nil {
				b.Fatal(err)
			}
			if size += int64(len(block)); trail && size%(1<<20) == 0 {
				tr.advance(f, size)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if trail {
			tr.done(f)
		}
		return (machineBusy(b) - busy0) * 2 // per GB
	}
	var with, without []float64
	for i := range b.N {
		if i%2 == 0 {
			with, without = append(with, write(true)), append(without, write(false))
		} else {
			without, with = append(without, write(false)), append(with, write(true))
		}
	}
	b.ReportMetric(median(with), "busy-s/GB-trail")
	b.ReportMetric(median(without), "busy-s/GB-none")
	b.ReportMetric(median(without)/median(with), "x-less")
}

// machineBusy is the CPU seconds every core of the machine has spent busy, from
// /proc/stat (all but idle and iowait).
func machineBusy(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	var total float64
	for i, f := range strings.Fields(line)[1:] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			b.Fatal(err)
		}
		if i != 3 && i != 4 {
			total += v
		}
	}
	return total / 100 // USER_HZ
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
