package core

import (
	"math"

	"github.com/ferryml/ferry/internal/scheduler"
)

// sequenceOf reads the V2 sequence parameters, as Triton names them: "sequence_id" (a
// non-negative integer or a string; 0 and "" mean none), "sequence_start" and
// "sequence_end" (booleans). It returns nil when the request gives none of them; models
// without sequence batching ignore them.
func sequenceOf(p Parameters) (*scheduler.Sequence, error) {
	id, hasID := p["sequence_id"]
	start, hasStart := p["sequence_start"]
	end, hasEnd := p["sequence_end"]
	if !hasID && !hasStart && !hasEnd {
		return nil, nil
	}
	sq := &scheduler.Sequence{}
	switch v := id.(type) {
	case nil:
	case string:
		sq.IDString = v
	case uint64:
		sq.ID = v
	case float64: // a JSON number too large for int64
		if v < 0 || v != math.Trunc(v) || v >= 1<<64 {
			return nil, Invalidf("parameter \"sequence_id\": want a non-negative integer or a string, got %v", v)
		}
		sq.ID = uint64(v)
	default:
		n, ok := asInt(v)
		if !ok || n < 0 {
			return nil, Invalidf("parameter \"sequence_id\": want a non-negative integer or a string, got %v", v)
		}
		sq.ID = uint64(n)
	}
	for _, f := range []struct {
		name string
		v    any
		set  bool
		dst  *bool
	}{{"sequence_start", start, hasStart, &sq.Start}, {"sequence_end", end, hasEnd, &sq.End}} {
		if !f.set {
			continue
		}
		b, ok := f.v.(bool)
		if !ok {
			return nil, Invalidf("parameter %q: want a boolean, got %v", f.name, f.v)
		}
		*f.dst = b
	}
	return sq, nil
}
