package core

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// Cache is the response cache core consults for model versions whose config enables
// response_cache; *cache.Cache implements it. Keys are SHA-256 digests of everything a
// response depends on (see cacheKey), so equal keys mean equal outputs.
//
// Ownership: Put must copy what it stores, because the response it is given goes on to
// the transport. The outputs Get returns share their Data with every other hit, so core
// and the transports only read them (both already treat response tensors as read-only).
type Cache interface {
	Get(key [sha256.Size]byte) ([]*tensor.Tensor, bool)
	Put(key [sha256.Size]byte, outputs []*tensor.Tensor) bool
}

// cacheLookup is what Infer keeps between looking a request up and storing its response.
type cacheLookup struct {
	key    [sha256.Size]byte
	store  bool // the version caches and the request missed: store the response
	lookup time.Duration
}

// cacheGet looks a checked request up when its version enables the response cache. A hit
// is answered here, without queue or model: the statistics count a success, its items and
// a cache hit, but no execution, as Triton does.
func (s *Server) cacheGet(l *Lease, req *InferRequest, outputs []string, items int, start time.Time) (cacheLookup, *InferResponse) {
	if s.cache == nil || !l.Config.GetResponseCache().GetEnable() {
		return cacheLookup{}, nil
	}
	t0 := time.Now()
	key, ok := s.cacheKey(l, req, outputs)
	if !ok {
		return cacheLookup{}, nil // a bad parameter: let the normal path report it
	}
	out, hit := s.cache.Get(key)
	lookup := time.Since(t0)
	if !hit {
		return cacheLookup{key: key, store: true, lookup: lookup}, nil
	}
	resp := &InferResponse{Model: l.Model, Version: l.Version, ID: req.ID, Outputs: out}
	s.finish(l, req, resp, outcome{items: items, start: start, total: time.Since(start), cached: true, lookup: lookup})
	return cacheLookup{}, resp
}

// cachePut stores the response of a request that missed. The miss is counted here, with
// the time of the lookup plus the insertion, so only successful misses count (Triton's
// cache_miss statistic).
func (s *Server) cachePut(l *Lease, c cacheLookup, resp *InferResponse) {
	if !c.store {
		return
	}
	t0 := time.Now()
	s.cache.Put(c.key, resp.Outputs)
	s.stats.recordCacheMiss(l.Model, l.Version, c.lookup+time.Since(t0))
}

// cacheKey digests what the outputs depend on: the loaded version (model, version and
// which load of it), the inputs by name (name, datatype, shape, data), the outputs asked
// for in order, and their classification counts. Every field is length-prefixed, so no
// two different requests hash the same bytes. Other parameters (priority, timeout,
// binary_data) change how a request travels, not its outputs, and are left out.
func (s *Server) cacheKey(l *Lease, req *InferRequest, outputs []string) ([sha256.Size]byte, bool) {
	h := sha256.New()
	var buf [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	str := func(v string) {
		num(uint64(len(v)))
		io.WriteString(h, v)
	}
	str("ferry response cache v1")
	str(l.Model)
	str(l.Version)
	num(s.loads.of(l.Scheduler))
	inputs := slices.Clone(req.Inputs)
	slices.SortFunc(inputs, func(a, b *tensor.Tensor) int { return strings.Compare(a.Name, b.Name) })
	num(uint64(len(inputs)))
	for _, t := range inputs {
		str(t.Name)
		num(uint64(t.DType))
		num(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			num(uint64(d))
		}
		num(uint64(len(t.Data)))
		h.Write(t.Data)
	}
	num(uint64(len(outputs)))
	for _, o := range outputs {
		str(o)
	}
	num(uint64(len(req.Outputs)))
	for _, ro := range req.Outputs {
		k, err := classifications(ro)
		if err != nil {
			return [sha256.Size]byte{}, false
		}
		num(uint64(k))
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key, true
}

// loadIDs numbers each loaded scheduler, so a version reloaded from changed files (same
// model name and version number, a new scheduler) never answers with the old files'
// responses. Weak pointers keep the map from holding unloaded schedulers alive, and a
// cleanup drops an entry once its scheduler is collected; their cache entries age out.
type loadIDs struct {
	mu   sync.Mutex
	last uint64
	ids  map[weak.Pointer[scheduler.Scheduler]]uint64
}

func (g *loadIDs) of(s *scheduler.Scheduler) uint64 {
	if s == nil {
		return 0
	}
	wp := weak.Make(s)
	g.mu.Lock()
	defer g.mu.Unlock()
	if id, ok := g.ids[wp]; ok {
		return id
	}
	if g.ids == nil {
		g.ids = map[weak.Pointer[scheduler.Scheduler]]uint64{}
	}
	g.last++
	g.ids[wp] = g.last
	runtime.AddCleanup(s, g.forget, wp)
	return g.last
}

func (g *loadIDs) forget(wp weak.Pointer[scheduler.Scheduler]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.ids, wp)
}

// entryLocked returns the stats of a version, creating them. Caller holds st.mu.
func (st *statsTable) entryLocked(model, version string) *ModelStats {
	k := [2]string{model, version}
	ms := st.m[k]
	if ms == nil {
		ms = &ModelStats{Name: model, Version: version}
		st.m[k] = ms
	}
	return ms
}

// recordCacheHit counts a request answered from the cache: a success with its items and
// an (empty) queue wait, as Triton counts it, and no execution or compute time.
func (st *statsTable) recordCacheHit(model, version string, items int, lookup, total time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ms := st.entryLocked(model, version)
	add(&ms.Success, total)
	add(&ms.Queue, 0)
	add(&ms.CacheHit, lookup)
	ms.InferenceCount += uint64(items)
	ms.LastInference = time.Now()
}

func (st *statsTable) recordCacheMiss(model, version string, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	add(&st.entryLocked(model, version).CacheMiss, d)
}
