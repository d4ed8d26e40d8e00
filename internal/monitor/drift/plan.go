package drift

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/tensor"
)

// plan is a model's immutable map from tensor columns to baseline features, built when
// its baseline is set and swapped atomically, so Finished reads it without a lock.
type plan struct {
	profile  *Profile
	source   string // where the baseline came from, for reports
	features []*featurePlan
	tensors  map[string]*tensorPlan
	// collect marks a model without a baseline whose reference window is filling: every
	// tensor (up to maxCollectBytes) is watched and named from its shape.
	collect bool
}

// featurePlan is one watched feature.
type featurePlan struct {
	name string
	prof *FeatureProfile
	bin  *binner // numeric only
	cfg  FeatureConfig
}

// tensorPlan maps a tensor's row columns to feature indexes (-1: not watched).
type tensorPlan struct {
	bare int   // the feature "NAME", for a one-element row
	cols []int // the feature of column j: "NAME[j]" or the config's Names
}

// maxCollectBytes bounds what a reference window copies of one tensor per request.
const maxCollectBytes = 64 << 10

// checkFeatures names each feature the configuration sets that the baseline lacks.
func checkFeatures(p *Profile, mc ModelConfig) error {
	var missing []string
	for name := range mc.Features {
		if _, ok := p.Features[name]; !ok && name != "*" {
			missing = append(missing, strconv.Quote(name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("features %s are configured but not in the baseline (it has %d features: %s)",
		strings.Join(missing, ", "), len(p.Features), abbreviate(p.Names()))
}

func abbreviate(names []string) string {
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

func newPlan(p *Profile, source string, mc ModelConfig) *plan {
	pl := &plan{profile: p, source: source, tensors: map[string]*tensorPlan{}}
	index := map[string]int{}
	for _, name := range p.Names() {
		fp := p.Features[name]
		f := &featurePlan{name: name, prof: fp, cfg: mc.featureConfig(name)}
		if f.cfg.Ignore {
			continue
		}
		if fp.Kind == Numeric {
			f.bin = newBinner(fp.Edges)
		}
		index[name] = len(pl.features)
		pl.features = append(pl.features, f)
	}
	tp := func(t string) *tensorPlan {
		if pl.tensors[t] == nil {
			pl.tensors[t] = &tensorPlan{bare: -1}
		}
		return pl.tensors[t]
	}
	renamed := map[string]bool{}
	for t, names := range mc.Names {
		for j, n := range names {
			if i, ok := index[n]; ok {
				tp(t).set(j, i)
				renamed[n] = true
			}
		}
	}
	for name, i := range index {
		if renamed[name] {
			continue
		}
		if t, j, ok := splitColumn(name); ok {
			tp(t).set(j, i)
		} else {
			tp(name).bare = i
		}
	}
	return pl
}

func (t *tensorPlan) set(j, feature int) {
	for len(t.cols) <= j {
		t.cols = append(t.cols, -1)
	}
	t.cols[j] = feature
}

// feature is the feature index of column j of a row of perRow elements, or -1.
func (t *tensorPlan) feature(j, perRow int) int {
	if perRow == 1 && t.bare >= 0 {
		return t.bare
	}
	if j < len(t.cols) {
		return t.cols[j]
	}
	return -1
}

// splitColumn parses "NAME[j]".
func splitColumn(s string) (string, int, bool) {
	if !strings.HasSuffix(s, "]") {
		return "", 0, false
	}
	open := strings.LastIndexByte(s, '[')
	if open <= 0 {
		return "", 0, false
	}
	j, err := strconv.Atoi(s[open+1 : len(s)-1])
	if err != nil || j < 0 {
		return "", 0, false
	}
	return s[:open], j, true
}

// columnName is the feature name of column j of a tensor's row: the config's name,
// else "NAME" for a one-element row, else "NAME[j]".
func columnName(names map[string][]string, t string, j, perRow int) string {
	if n := names[t]; j < len(n) {
		return n[j]
	}
	if perRow == 1 {
		return t
	}
	return t + "[" + strconv.Itoa(j) + "]"
}

// shape splits a tensor's elements into rows: items rows when they divide the
// element count, else one row.
func shape(elems, items int) (rows, perRow int) {
	if items > 0 && elems%items == 0 && elems > 0 {
		return items, elems / items
	}
	return 1, elems
}

// number decodes element i of numeric data.
func number(d tensor.DType, b []byte, i int) float64 {
	le := binary.LittleEndian
	switch d {
	case tensor.FP32:
		return float64(math.Float32frombits(le.Uint32(b[4*i:])))
	case tensor.FP64:
		return math.Float64frombits(le.Uint64(b[8*i:]))
	case tensor.Int64:
		return float64(int64(le.Uint64(b[8*i:])))
	case tensor.Int32:
		return float64(int32(le.Uint32(b[4*i:])))
	case tensor.Bool, tensor.Uint8:
		return float64(b[i])
	case tensor.Int8:
		return float64(int8(b[i]))
	case tensor.Int16:
		return float64(int16(le.Uint16(b[2*i:])))
	case tensor.Uint16:
		return float64(le.Uint16(b[2*i:]))
	case tensor.Uint32:
		return float64(le.Uint32(b[4*i:]))
	case tensor.Uint64:
		return float64(le.Uint64(b[8*i:]))
	case tensor.FP16:
		return float64(tensor.FP16ToFloat32(le.Uint16(b[2*i:])))
	case tensor.BF16:
		return float64(tensor.BF16ToFloat32(le.Uint16(b[2*i:])))
	}
	return math.NaN()
}
