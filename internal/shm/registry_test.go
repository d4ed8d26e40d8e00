package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

var objectSeq atomic.Int64

// newObject creates a shared memory object of size bytes (byte i holds i%251) under a
// unique key and removes it when the test ends. It returns the key (with its '/').
func newObject(t testing.TB, size int) string {
	t.Helper()
	file := fmt.Sprintf("ferry-shm-test-%d-%d", os.Getpid(), objectSeq.Add(1))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if err := os.WriteFile(shmDir+file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(shmDir + file) })
	return "/" + file
}

// mapped reports whether the process maps the object of key (/proc/self/maps).
func mapped(t testing.TB, key string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(shmDir+strings.TrimPrefix(key, "/")))
}

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct{ key, file, err string }{
		{"/x", "x", ""},
		{"x", "x", ""},
		{"/" + strings.Repeat("a", 255), strings.Repeat("a", 255), ""},
		{"", "", "is empty"},
		{"/", "", "is empty"},
		{"../x", "", "must not contain '/'"},
		{"a/b", "", "must not contain '/'"},
		{"//x", "", "must not contain '/'"},
		{"/..", "", "is invalid"},
		{".", "", "is invalid"},
		{"a\x00b", "", "NUL"},
		{strings.Repeat("a", 256), "", "too long"},
	} {
		file, err := CheckKey(tc.key)
		switch {
		case tc.err == "" && (err != nil || file != tc.file):
			t.Errorf("CheckKey(%q) = %q, %v; want %q", tc.key, file, err, tc.file)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid)):
			t.Errorf("CheckKey(%q) err = %v, want ErrInvalid containing %q", tc.key, err, tc.err)
		}
	}
}

func TestRegisterRefusesBadRegions(t *testing.T) {
	key := newObject(t, 100)
	r := New()
	defer r.Close()
	if err := os.Symlink(shmDir+strings.TrimPrefix(key, "/"), shmDir+"ferry-shm-test-link"); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shmDir + "ferry-shm-test-link")
	for _, tc := range []struct {
		name, key    string
		offset, size uint64
		kind         error
		want         string
	}{
		{"missing", "/ferry-shm-test-no-such-object", 0, 1, ErrInvalid, "no such shared memory object"},
		{"path", "../etc/passwd", 0, 1, ErrInvalid, "must not contain '/'"},
		{"subdir", "a/b", 0, 1, ErrInvalid, "must not contain '/'"},
		{"symlink", "/ferry-shm-test-link", 0, 1, ErrInvalid, "symbolic link"},
		{"too big", key, 0, 101, ErrInvalid, "0 + byte_size 101 = 101 is past the end"},
		{"offset past end", key, 100, 1, ErrInvalid, "offset 100 + byte_size 1 = 101 is past the end"},
		{"zero size", key, 0, 0, ErrInvalid, "byte_size must be greater than 0"},
		{"overflow", key, 1 << 63, 1 << 63, ErrInvalid, "overflows"},
		{"", key, 0, 1, ErrInvalid, "name is empty"},
	} {
		err := r.Register(tc.name, tc.key, tc.offset, tc.size)
		if err == nil || !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Register(%q, %q, %d, %d) err = %v, want %v containing %q", tc.name, tc.key, tc.offset, tc.size, err, tc.kind, tc.want)
		}
	}
	if st, _ := r.Status(""); len(st) != 0 {
		t.Errorf("Status after failed registrations = %v, want none", st)
	}
}

func TestRegisterStatusUnregister(t *testing.T) {
	key := newObject(t, 10000)
	r := New()
	if err := r.Register("a", key, 0, 10000); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("b", key, 5000, 100); err != nil { // not page-aligned
		t.Fatal(err)
	}
	if err := r.Register("a", key, 0, 1); !errors.Is(err, ErrExists) {
		t.Errorf("second Register(a) err = %v, want ErrExists", err)
	}
	st, err := r.Status("")
	want := []Region{{"a", key, 0, 10000}, {"b", key, 5000, 100}}
	if err != nil || fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Status() = %v, %v; want %v", st, err, want)
	}
	if st, err := r.Status("b"); err != nil || len(st) != 1 || st[0] != want[1] {
		t.Errorf("Status(b) = %v, %v", st, err)
	}
	if _, err := r.Status("c"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("Status(c) err = %v, want ErrNotFound naming c", err)
	}
	l, err := r.Acquire("b", 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 20)
	if err := l.CopyOut(got); err != nil {
		t.Fatal(err)
	}
	l.Release()
	for i, c := range got {
		if want := byte((5010 + i) % 251); c != want {
			t.Fatalf("byte %d of b at 10 = %d, want %d", i, c, want)
		}
	}
	if err := r.Unregister("a"); err != nil {
		t.Fatal(err)
	}
	if err := r.Unregister("a"); err != nil {
		t.Errorf("Unregister of an unknown name = %v, want nil (as Triton)", err)
	}
	if !mapped(t, key) {
		t.Error("b is registered but its object is not mapped")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if mapped(t, key) {
		t.Error("the object is still mapped after Close")
	}
	if err := r.Register("c", key, 0, 1); err == nil {
		t.Error("Register after Close succeeded")
	}
}

func TestAcquireChecksBounds(t *testing.T) {
	key := newObject(t, 64)
	r := New()
	defer r.Close()
	if err := r.Register("r", key, 0, 64); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		offset, size int64
		want         string
	}{
		{"r", 0, 65, "past the end of the region (64 bytes)"},
		{"r", 64, 1, "past the end"},
		{"r", 65, 0, "past the end"},
		{"r", 1 << 62, 1 << 62, "past the end"},
		{"r", -1, 4, "must not be negative"},
		{"nope", 0, 4, `"nope" is not registered`},
	} {
		if _, err := r.Acquire(tc.name, tc.offset, tc.size); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Acquire(%q, %d, %d) err = %v, want ErrInvalid containing %q", tc.name, tc.offset, tc.size, err, tc.want)
		}
	}
	l, err := r.Acquire("r", 64, 0)
	if err != nil {
		t.Fatalf("empty lease at the end: %v", err)
	}
	l.Release()
}

// A lease keeps the memory mapped after Unregister; the last release unmaps it.
func TestLeaseOutlivesUnregister(t *testing.T) {
	key := newObject(t, 4096)
	r := New()
	defer r.Close()
	if err := r.Register("r", key, 0, 4096); err != nil {
		t.Fatal(err)
	}
	l1, _ := r.Acquire("r", 0, 4096)
	l2, _ := r.Acquire("r", 100, 8)
	if err := r.Unregister("r"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire("r", 0, 1); err == nil {
		t.Error("Acquire after Unregister succeeded")
	}
	if err := l1.CopyIn([]byte("written after unregister")); err != nil {
		t.Fatal(err)
	}
	l1.Release()
	l1.Release() // harmless
	if !mapped(t, key) {
		t.Fatal("unmapped while a lease is held")
	}
	l2.Release()
	if mapped(t, key) {
		t.Error("still mapped after the last lease was released")
	}
	b, _ := os.ReadFile(shmDir + strings.TrimPrefix(key, "/"))
	if !bytes.HasPrefix(b, []byte("written after unregister")) {
		t.Errorf("object starts %q, want the bytes written through the lease", b[:24])
	}
}

// A client may shrink the object under the mapping; copying then faults, which must
// be an error, not a crash.
func TestTruncatedObjectFaultsCleanly(t *testing.T) {
	key := newObject(t, 3*4096)
	r := New()
	defer r.Close()
	if err := r.Register("r", key, 0, 3*4096); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(shmDir+strings.TrimPrefix(key, "/"), 0); err != nil {
		t.Fatal(err)
	}
	l, err := r.Acquire("r", 0, 3*4096)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	err = l.CopyOut(make([]byte, 3*4096))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory fault") {
		t.Errorf("CopyOut of a truncated object err = %v, want a memory fault error", err)
	}
	if err := l.CopyIn([]byte{1}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("CopyIn into a truncated object err = %v, want a fault error", err)
	}
}
