package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// graphDecl is what a model file declares of its graph's inputs and outputs.
type graphDecl struct {
	// inputs and outputs are in graph order, as ONNX Runtime reports them once it has
	// built a session: inputs that are also initializers are left out (they are
	// overridable constants, not inputs), and each dimension is its size or -1.
	inputs, outputs []ort.InputOutputInfo
	// shapes keeps the names of symbolic dimensions, which ONNX Runtime does not
	// report and Ferry needs to size an output before a run (see planOutput).
	shapes graphShapes
	// complete is false when the file declares something this reading does not cover
	// (a value without a type) or no graph at all: ask ONNX Runtime then.
	complete bool
}

// parseGraph reads a model's declared inputs and outputs from the bytes of its
// ModelProto. It costs no ONNX Runtime session, which for a large model is seconds and a
// second copy of its weights.
func parseGraph(model []byte) (*graphDecl, error) {
	g := &graphDecl{shapes: graphShapes{inputs: map[string]valueShape{}, outputs: map[string]valueShape{}}, complete: true}
	var inputs []ort.InputOutputInfo
	inits := map[string]bool{}
	graph := false
	err := eachField(model, func(num protowire.Number, v []byte) error {
		if num != modelGraph {
			return nil
		}
		graph = true
		return eachField(v, func(num protowire.Number, v []byte) error {
			switch num {
			case graphInput, graphOutput:
				info, shape, known, err := valueInfo(v)
				g.complete = g.complete && known
				if num == graphInput {
					inputs = append(inputs, info)
					g.shapes.inputs[info.Name] = shape
				} else {
					g.outputs = append(g.outputs, info)
					g.shapes.outputs[info.Name] = shape
				}
				return err
			case graphInitializer:
				return eachField(v, func(num protowire.Number, v []byte) error {
					if num == tensorName {
						inits[string(v)] = true
					}
					return nil
				})
			case graphSparseInitializer:
				return eachField(v, func(num protowire.Number, v []byte) error {
					if num != sparseValues {
						return nil
					}
					return eachField(v, func(num protowire.Number, v []byte) error {
						if num == tensorName {
							inits[string(v)] = true
						}
						return nil
					})
				})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	g.complete = g.complete && graph
	for _, in := range inputs {
		if !inits[in.Name] {
			g.inputs = append(g.inputs, in)
		}
	}
	return g, nil
}

// valueInfo reads a ValueInfoProto: its name, kind of value and, for a tensor, element
// type and dimensions. known is false for a value without a type.
func valueInfo(b []byte) (info ort.InputOutputInfo, shape valueShape, known bool, err error) {
	info.Dimensions = ort.Shape{}
	err = eachField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case valueInfoName:
			info.Name = string(v)
		case valueInfoType:
			return eachField(v, func(num protowire.Number, v []byte) error {
				known = true
				switch num {
				case typeTensor:
					info.OrtValueType = ort.ONNXTypeTensor
					return tensorType(v, &info, &shape)
				case typeSequence:
					info.OrtValueType = ort.ONNXTypeSequence
				case typeMap:
					info.OrtValueType = ort.ONNXTypeMap
				case typeOpaque:
					info.OrtValueType = ort.ONNXTypeOpaque
				case typeSparseTensor:
					info.OrtValueType = ort.ONNXTypeSparseTensor
				case typeOptional:
					info.OrtValueType = ort.ONNXTypeOptional
				default:
					known = false
				}
				return nil
			})
		}
		return nil
	})
	return info, shape, known, err
}

// tensorType reads a TypeProto.Tensor: elem_type, and the shape when declared (none
// reads as rank 0, as ONNX Runtime reports it).
func tensorType(b []byte, info *ort.InputOutputInfo, shape *valueShape) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag", errProto)
		}
		b = b[n:]
		switch {
		case num == tensorElemType && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: bad elem_type", errProto)
			}
			info.DataType = ort.TensorElementDataType(v)
			b = b[n:]
			continue
		case num == tensorTypeShape && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: bad shape", errProto)
			}
			b = b[n:]
			shape.known = true
			err := eachField(v, func(num protowire.Number, v []byte) error {
				if num != shapeDim {
					return nil
				}
				d, err := parseDim(v)
				size := int64(-1)
				if d.fixed && d.value >= 0 {
					size = d.value
				}
				info.Dimensions = append(info.Dimensions, size)
				shape.dims = append(shape.dims, d)
				return err
			})
			if err != nil {
				return err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return fmt.Errorf("%w: bad field %d", errProto, num)
		}
		b = b[n:]
	}
	return nil
}

// OpTypes returns the operator types of the nodes of a model file's main graph (not
// of subgraphs). It reads the file, not a session: a caller can tell how a model
// computes before paying for one.
func OpTypes(path string) (map[string]bool, error) {
	model, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", path, err)
	}
	defer release()
	ops, err := opTypes(model)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", path, err)
	}
	return ops, nil
}

func opTypes(model []byte) (map[string]bool, error) {
	ops := map[string]bool{}
	err := eachField(model, func(num protowire.Number, v []byte) error {
		if num != modelGraph {
			return nil
		}
		return eachField(v, func(num protowire.Number, v []byte) error {
			if num != graphNode {
				return nil
			}
			return eachField(v, func(num protowire.Number, v []byte) error {
				if num == nodeOpType {
					ops[string(v)] = true
				}
				return nil
			})
		})
	})
	return ops, err
}
