package lane

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// Core is what a lane needs from core; core.API (and *core.Server) has it.
type Core interface {
	ModelMetadata(ctx context.Context, model, version string) (*core.ModelMetadata, error)
	ModelConfig(ctx context.Context, model, version string) (*inference.ModelConfig, error)
	Infer(ctx context.Context, req *core.InferRequest) (*core.InferResponse, error)
}

// Column is one model input or output as a row sees it: Shape is one row's shape (the
// batch dimension dropped when the model batches); a -1 is a dimension each row sets.
type Column struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
}

// Mapping says which row fields fill a model input, in order: their values, flattened
// and concatenated, are the input's elements for that row. An input the mapping does
// not name is filled by the field of its own name.
type Mapping map[string][]string

// Schema is a model version's inputs and outputs as rows see them, with the fields
// that fill each input.
type Schema struct {
	Model   string
	Version string
	// MaxBatch is the most rows one request may carry: the model's max_batch_size, or
	// 1 for a model that does not batch (each row is then a whole request).
	MaxBatch int
	Batching bool
	Inputs   []Column
	Outputs  []Column
	sources  [][]string // per input, the fields that fill it
}

// Describe reads a model version's schema through core ("" is the version core would
// pick) and checks the mapping against it: a mapping naming an input the model lacks is
// an error naming it.
func Describe(ctx context.Context, c Core, model, version string, m Mapping) (*Schema, error) {
	md, err := c.ModelMetadata(ctx, model, version)
	if err != nil {
		return nil, err
	}
	cfg, err := c.ModelConfig(ctx, model, version)
	if err != nil {
		return nil, err
	}
	s := &Schema{Model: model, Version: version, MaxBatch: int(cfg.GetMaxBatchSize())}
	s.Batching = s.MaxBatch > 0
	if !s.Batching {
		s.MaxBatch = 1
	}
	if s.Inputs, err = columns(md.Inputs, s.Batching); err != nil {
		return nil, err
	}
	if s.Outputs, err = columns(md.Outputs, s.Batching); err != nil {
		return nil, err
	}
	for name := range m {
		if !slices.ContainsFunc(s.Inputs, func(c Column) bool { return c.Name == name }) {
			return nil, fmt.Errorf("mapping names input %q, which model %q does not have (inputs: %s)", name, model, s.inputNames())
		}
	}
	for _, in := range s.Inputs {
		src := m[in.Name]
		if len(src) == 0 {
			src = []string{in.Name}
		}
		s.sources = append(s.sources, src)
	}
	return s, nil
}

func columns(ts []core.TensorMetadata, batching bool) ([]Column, error) {
	out := make([]Column, 0, len(ts))
	for _, t := range ts {
		dt, err := tensor.ParseDType(t.DataType)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		shape := tensor.Shape(t.Shape)
		if batching && len(shape) > 0 {
			shape = shape[1:]
		}
		out = append(out, Column{Name: t.Name, DType: dt, Shape: shape.Clone()})
	}
	return out, nil
}

func (s *Schema) inputNames() string {
	names := make([]string, len(s.Inputs))
	for i, c := range s.Inputs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// Fields lists the row fields the model reads, in input order.
func (s *Schema) Fields() []string {
	var out []string
	for _, src := range s.sources {
		out = append(out, src...)
	}
	return out
}

// InputFields lists the row fields that fill input i (of Inputs), in order.
func (s *Schema) InputFields(i int) []string { return s.sources[i] }

// CheckFields fails, naming every missing field and the input it would fill, when
// have (a file's columns) lacks a field the model needs: a job fails at start, not on
// its millionth row.
func (s *Schema) CheckFields(have []string) error {
	var missing []string
	for i, src := range s.sources {
		for _, f := range src {
			if !slices.Contains(have, f) {
				missing = append(missing, fmt.Sprintf("%q (for input %q)", f, s.Inputs[i].Name))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("model %q needs column(s) %s; the input has %s", s.Model, strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return nil
}
