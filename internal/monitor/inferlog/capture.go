package inferlog

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// capture is one sampled request, copied out of its core.Record on the request
// goroutine: plain copies into buffers the capture owns and reuses (it is pooled), no
// encoding. The dispatcher encodes it into line; every sink reads it, read-only, until
// it releases its reference.
type capture struct {
	seq      uint64
	start    time.Time
	latency  time.Duration
	model    string
	version  string
	clientID string
	route    string
	traceID  string // 32 hex digits, or ""
	errMsg   string
	failed   bool
	trunc    bool
	raw      bool // numeric data as base64 of its bytes (Config.TensorData "binary")
	sample   float64
	inputs   []tensorCap
	outputs  []tensorCap
	shapes   []int64 // backing of every tensorCap's shape
	arena    []byte  // backing of every tensorCap's data
	reqID    [32]byte
	line     []byte // the JSON entry with its newline, set by the dispatcher
	refs     atomic.Int32
	released func(*capture)
}

// tensorCap is one tensor of a capture: its data as far as the size cap allowed.
type tensorCap struct {
	name      string
	dtype     tensor.DType
	shapeOff  int
	shapeLen  int
	dataOff   int
	dataLen   int
	redacted  bool
	truncated bool
}

func (c *capture) shape(t *tensorCap) []int64 { return c.shapes[t.shapeOff : t.shapeOff+t.shapeLen] }
func (c *capture) data(t *tensorCap) []byte   { return c.arena[t.dataOff : t.dataOff+t.dataLen] }

// release drops one reference; the last one returns the capture to its pool.
func (c *capture) release() {
	if c.refs.Add(-1) == 0 {
		c.released(c)
	}
}

// capturer holds what fill needs from the configuration.
type capturer struct {
	maxBytes int
	redact   map[string]struct{}
	raw      bool
}

// fill copies r into c. Sizes are computed first so the arena grows at most once and
// the offsets stay valid.
func (cp *capturer) fill(c *capture, r *core.Record) {
	c.start, c.latency = r.Start, r.Total
	c.model, c.version, c.clientID, c.route = r.Model, r.Version, r.ID, r.Route
	c.traceID = traceID(r.TraceParent)
	c.failed, c.errMsg, c.trunc, c.raw = r.Err != nil, "", false, cp.raw
	if r.Err != nil {
		c.errMsg = r.Err.Error()
	}
	budget := cp.maxBytes
	dims, bytes := 0, 0
	for _, ts := range [2][]*tensor.Tensor{r.Inputs, r.Outputs} {
		for _, t := range ts {
			dims += len(t.Shape)
			if _, red := cp.redact[t.Name]; !red {
				n := keep(t, budget)
				budget -= n
				bytes += n
			}
		}
	}
	c.shapes = grow(c.shapes, dims)
	c.arena = growBytes(c.arena, bytes)
	budget = cp.maxBytes
	c.inputs = cp.copyAll(c, c.inputs[:0], r.Inputs, &budget)
	c.outputs = cp.copyAll(c, c.outputs[:0], r.Outputs, &budget)
}

func (cp *capturer) copyAll(c *capture, dst []tensorCap, ts []*tensor.Tensor, budget *int) []tensorCap {
	for _, t := range ts {
		tc := tensorCap{name: t.Name, dtype: t.DType, shapeOff: len(c.shapes), shapeLen: len(t.Shape), dataOff: len(c.arena)}
		c.shapes = append(c.shapes, t.Shape...)
		if _, red := cp.redact[t.Name]; red {
			tc.redacted = true
		} else {
			n := keep(t, *budget)
			*budget -= n
			c.arena = append(c.arena, t.Data[:n]...)
			tc.dataLen = n
			tc.truncated = n < len(t.Data)
			c.trunc = c.trunc || tc.truncated
		}
		dst = append(dst, tc)
	}
	return dst
}

// keep is how many of t's data bytes fit in budget: whole elements only.
func keep(t *tensor.Tensor, budget int) int {
	if budget <= 0 {
		return 0
	}
	if len(t.Data) <= budget {
		return len(t.Data)
	}
	if t.DType == tensor.Bytes {
		n := 0
		for n+4 <= len(t.Data) {
			l := int(binary.LittleEndian.Uint32(t.Data[n:]))
			if l > budget-n-4 || l > len(t.Data)-n-4 {
				break
			}
			n += 4 + l
		}
		return n
	}
	if s := t.DType.Size(); s > 0 {
		return budget / s * s
	}
	return 0
}

// grow empties s keeping room for n more elements.
func grow(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, 0, n)
	}
	return s[:0]
}

func growBytes(s []byte, n int) []byte {
	if cap(s) < n {
		return make([]byte, 0, n)
	}
	return s[:0]
}

// traceID is the trace-id of a W3C traceparent core has already checked, or "".
func traceID(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	return tp[3:35]
}
