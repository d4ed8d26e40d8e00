package inferlog

import (
	"os"

	"golang.org/x/sys/unix"
)

// The log's files are written once and read rarely, so their pages need not stay in
// the page cache, where they would push out what the server does read (model files)
// and where every new page is one more the kernel must find: on the 2-core VMs this
// project measures on, writing 1 GB took 1.5-2.0 s of the machine's CPU as new pages,
// 0.5-0.6 s with this trail (the written bytes behind it dropped from the cache).
const (
	// trailChunk is the step in which written bytes are sent to disk (asynchronously)
	// and, trailKeep behind, dropped from the cache.
	trailChunk = 4 << 20
	// trailKeep is how much of what was last written stays cached: time for its
	// writeback (started trailKeep-trailChunk earlier) to end, as the kernel drops only
	// clean pages and skips the rest.
	trailKeep = 32 << 20
)

// pageTrail follows a file being appended to: what it has asked the kernel to write
// back and to drop. It only advises; failures are ignored (the data is written either
// way).
type pageTrail struct {
	started, dropped int64
}

// advance takes the file's size after a flush.
func (t *pageTrail) advance(f *os.File, size int64) {
	fd := int(f.Fd())
	if size-t.started >= trailChunk {
		_ = unix.SyncFileRange(fd, t.started, size-t.started, unix.SYNC_FILE_RANGE_WRITE)
		t.started = size
	}
	if drop := t.started - trailKeep; drop-t.dropped >= trailChunk {
		_ = unix.Fadvise(fd, t.dropped, drop-t.dropped, unix.FADV_DONTNEED)
		t.dropped = drop
	}
}

// done drops the whole file's cached pages; the caller has synced it.
func (t *pageTrail) done(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
