package trees

import (
	"os"
	"runtime"
	"sync"
	"time"
	"weak"
)

// shared remembers the models in use by file, so that the instances of one model
// version hold one copy: a parsed Model is only read, and leaves predicts from several
// goroutines at once. An entry goes when its Model is collected.
var shared = struct {
	mu     sync.Mutex
	models map[fileKey]weak.Pointer[Model]
}{models: map[fileKey]weak.Pointer[Model]{}}

// fileKey names one content of a model file, as far as the file system tells.
type fileKey struct {
	path   string
	size   int64
	mtime  time.Time
	format Format
}

// LoadShared is Load for the instances of one model: while a Model read from the same
// file (path, size and modification time) with the same wanted format is still in use,
// it is returned instead of parsing the file again.
func LoadShared(path string, want Format) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	key := fileKey{path: path, size: st.Size(), mtime: st.ModTime(), format: want}
	shared.mu.Lock()
	m := shared.models[key].Value()
	shared.mu.Unlock()
	if m != nil {
		return m, nil
	}
	if m, err = Load(path, want); err != nil {
		return nil, err
	}
	shared.mu.Lock()
	shared.models[key] = weak.Make(m)
	shared.mu.Unlock()
	runtime.AddCleanup(m, forget, key)
	return m, nil
}

// forget drops a collected model's entry, unless a newer load has replaced it.
func forget(key fileKey) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.models[key].Value() == nil {
		delete(shared.models, key)
	}
}
