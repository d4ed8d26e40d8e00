package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// The kinds of request data.
const (
	DataRandom = "random" // uniform values: floats in [0,1), integers in [0,100), short strings
	DataZero   = "zero"   // zeros, false, empty strings
	DataFile   = "file"   // Data.Entries, read with ReadDataFile
)

// Data chooses what the requests carry.
type Data struct {
	Mode    string  // DataRandom (the default when empty), DataZero or DataFile
	Entries []Entry // the samples, for DataFile
	Seed    uint64  // seeds DataRandom, so runs send the same values
}

// Entry is one sample of a data file: per input name, one item's values.
type Entry map[string]FileTensor

// FileTensor is one input's values in a data file entry.
type FileTensor struct {
	Values []any        // leaves of the (possibly nested) array: json.Number, bool or string
	Shape  tensor.Shape // the item's shape when the file gives one; nil takes it from the model
}

// ReadDataFile reads perf_analyzer's input data format: {"data": [{"INPUT0": [...]},
// ...]}, where each input is a flat or nested array, or {"content": [...], "shape":
// [...]}. Each entry is one item, without the batch dimension.
func ReadDataFile(r io.Reader) ([]Entry, error) {
	var file struct {
		Data []map[string]json.RawMessage `json:"data"`
		// perf_analyzer's expected outputs; accepted so its files load, not checked.
		ValidationData json.RawMessage `json:"validation_data"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("input data file: %w", err)
	}
	if len(file.Data) == 0 {
		return nil, errors.New(`input data file: "data" holds no entries`)
	}
	entries := make([]Entry, len(file.Data))
	for i, raw := range file.Data {
		entries[i] = Entry{}
		for name, msg := range raw {
			ft, err := parseFileTensor(msg)
			if err != nil {
				return nil, fmt.Errorf("input data file: data[%d].%s: %w", i, name, err)
			}
			entries[i][name] = ft
		}
	}
	return entries, nil
}

func parseFileTensor(msg json.RawMessage) (FileTensor, error) {
	var ft FileTensor
	content := msg
	if b := bytes.TrimSpace(msg); len(b) > 0 && b[0] == '{' {
		var obj struct {
			Content json.RawMessage `json:"content"`
			Shape   []int64         `json:"shape"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil {
			return ft, err
		}
		if obj.Content == nil {
			return ft, errors.New(`want "content"`)
		}
		content, ft.Shape = obj.Content, obj.Shape
		if ft.Shape == nil {
			ft.Shape = tensor.Shape{}
		}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return ft, err
	}
	var err error
	if ft.Values, err = v2json.Flatten(ft.Values, v); err != nil {
		return ft, err
	}
	return ft, nil
}

// Samples builds the inputs of the requests a run sends: one set for generated data,
// one per file entry for file data (request i takes entries i..i+batch-1, wrapping).
// shapes gives the variable dimensions of inputs, without the batch dimension; the
// variable dimensions of the others are 1.
func Samples(m Model, batch int, shapes map[string]tensor.Shape, d Data) ([][]*tensor.Tensor, error) {
	if err := checkBatch(m, batch); err != nil {
		return nil, err
	}
	for name := range shapes {
		if !hasInput(m, name) {
			return nil, fmt.Errorf("--shape %s: model %s has no input %q", name, m.ref(), name)
		}
	}
	switch d.Mode {
	case "", DataRandom, DataZero:
		return generated(m, batch, shapes, d)
	case DataFile:
		if len(d.Entries) == 0 {
			return nil, errors.New("input data: file mode without entries")
		}
		out := make([][]*tensor.Tensor, len(d.Entries))
		for s := range d.Entries {
			var err error
			if out[s], err = fromFile(m, batch, shapes, d.Entries, s); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("input data %q: want random, zero or a JSON file", d.Mode)
}

func checkBatch(m Model, batch int) error {
	switch {
	case batch < 1:
		return fmt.Errorf("batch size %d: must be at least 1", batch)
	case m.MaxBatchSize == 0 && batch != 1:
		return fmt.Errorf("batch size %d: model %s does not batch (max_batch_size 0)", batch, m.ref())
	case m.MaxBatchSize > 0 && batch > m.MaxBatchSize:
		return fmt.Errorf("batch size %d: model %s takes at most %d (max_batch_size)", batch, m.ref(), m.MaxBatchSize)
	}
	return nil
}

func hasInput(m Model, name string) bool {
	for _, in := range m.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// itemShape is one item's shape: the declared shape without the batch dimension, with
// the override (which must keep the fixed dimensions) or 1 for each variable one.
func itemShape(in Input, batching bool, override tensor.Shape) (tensor.Shape, error) {
	dims := in.Shape
	if batching {
		if len(dims) == 0 {
			return nil, fmt.Errorf("input %q: a batching model's input needs a batch dimension, shape is %v", in.Name, in.Shape)
		}
		dims = dims[1:]
	}
	if override == nil {
		out := dims.Clone()
		for i, d := range out {
			if d < 0 {
				out[i] = 1
			}
		}
		return out, nil
	}
	if len(override) != len(dims) || !override.Matches(dims) {
		return nil, fmt.Errorf("input %q: shape %v does not fit the model's %v", in.Name, override, dims)
	}
	return override.Clone(), nil
}

func requestShape(item tensor.Shape, batching bool, batch int) tensor.Shape {
	if !batching {
		return item
	}
	return append(tensor.Shape{int64(batch)}, item...)
}

func generated(m Model, batch int, shapes map[string]tensor.Shape, d Data) ([][]*tensor.Tensor, error) {
	rng := rand.New(rand.NewPCG(d.Seed, d.Seed^0x9e3779b97f4a7c15))
	batching := m.MaxBatchSize > 0
	inputs := make([]*tensor.Tensor, len(m.Inputs))
	for i, in := range m.Inputs {
		item, err := itemShape(in, batching, shapes[in.Name])
		if err != nil {
			return nil, err
		}
		shape := requestShape(item, batching, batch)
		n, err := shape.NumElements()
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		data, err := fill(in.DType, int(n), d.Mode == DataZero, rng)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		inputs[i] = &tensor.Tensor{Name: in.Name, DType: in.DType, Shape: shape, Data: data}
	}
	return [][]*tensor.Tensor{inputs}, nil
}

// fill returns n elements of dt, zero or random, as tensor bytes.
func fill(dt tensor.DType, n int, zero bool, rng *rand.Rand) ([]byte, error) {
	if !dt.Valid() {
		return nil, fmt.Errorf("datatype %s is not a V2 datatype", dt)
	}
	if dt == tensor.Bytes {
		var b []byte
		elem := make([]byte, 16)
		for range n {
			if zero {
				b = tensor.AppendBytesElement(b, nil)
				continue
			}
			for j := range elem {
				elem[j] = byte('a' + rng.IntN(26))
			}
			b = tensor.AppendBytesElement(b, elem)
		}
		return b, nil
	}
	if zero {
		return make([]byte, n*dt.Size()), nil
	}
	b := make([]byte, 0, n*dt.Size())
	for range n {
		var v any
		switch dt {
		case tensor.FP16, tensor.BF16, tensor.FP32, tensor.FP64:
			v = json.Number(strconv.FormatFloat(rng.Float64(), 'g', -1, 64))
		case tensor.Bool:
			v = rng.IntN(2) == 1
		default:
			v = json.Number(strconv.Itoa(rng.IntN(100)))
		}
		var err error
		if b, err = v2json.AppendValue(b, dt, v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func fromFile(m Model, batch int, shapes map[string]tensor.Shape, entries []Entry, s int) ([]*tensor.Tensor, error) {
	batching := m.MaxBatchSize > 0
	items := 1
	if batching {
		items = batch
	}
	inputs := make([]*tensor.Tensor, len(m.Inputs))
	for i, in := range m.Inputs {
		var item tensor.Shape
		var data []byte
		for k := range items {
			e := (s + k) % len(entries)
			ft, ok := entries[e][in.Name]
			if !ok {
				return nil, fmt.Errorf("input data: data[%d] has no input %q", e, in.Name)
			}
			override := shapes[in.Name]
			if ft.Shape != nil {
				override = ft.Shape
			}
			sh, err := itemShape(in, batching, override)
			if err != nil {
				return nil, fmt.Errorf("input data: data[%d]: %w", e, err)
			}
			if k > 0 && !sh.Equal(item) {
				return nil, fmt.Errorf("input data: data[%d].%s has shape %v, the batch's first item %v", e, in.Name, sh, item)
			}
			item = sh
			if data, err = appendItem(data, in, sh, ft.Values); err != nil {
				return nil, fmt.Errorf("input data: data[%d].%w", e, err)
			}
		}
		inputs[i] = &tensor.Tensor{Name: in.Name, DType: in.DType, Shape: requestShape(item, batching, batch), Data: data}
	}
	return inputs, nil
}

func appendItem(dst []byte, in Input, shape tensor.Shape, values []any) ([]byte, error) {
	n, err := shape.NumElements()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	if int64(len(values)) != n {
		return nil, fmt.Errorf("%s: shape %v needs %d values, got %d", in.Name, shape, n, len(values))
	}
	for j, v := range values {
		if dst, err = v2json.AppendValue(dst, in.DType, v); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", in.Name, j, err)
		}
	}
	return dst, nil
}
