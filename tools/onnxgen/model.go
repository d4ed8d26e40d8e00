package onnxgen

import (
	"bytes"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Versions every generated model declares.
const (
	// IRVersion is ModelProto.ir_version: IR 8 (ONNX 1.10+) is old enough for
	// any current ONNX Runtime and new enough for opset 13.
	IRVersion = 8
	// OpsetVersion is the version of the default "ai.onnx" operator set
	// imported (opset 13 is the first where Softmax normalises a single axis
	// and where Identity, Add and friends accept every numeric type).
	OpsetVersion = 13
	// ProducerName is ModelProto.producer_name.
	ProducerName = "ferry-onnxgen"
)

// Dim is one dimension of a graph input or output shape: either a fixed size
// or a symbolic name. ONNX Runtime reports symbolic dimensions as -1.
type Dim struct {
	Value int64  // used when Param is empty
	Param string // symbolic name, e.g. "batch"; dims with the same name must agree at run time
}

// Fixed returns a dimension of fixed size n.
func Fixed(n int64) Dim { return Dim{Value: n} }

// Sym returns a symbolic dimension called name.
func Sym(name string) Dim { return Dim{Param: name} }

// Attr is a node attribute. Build one with [AttrInt], [AttrFloat] or
// [AttrInts].
type Attr struct {
	name string
	kind attrKind
	i    int64
	f    float32
	ints []int64
}

// attrKind is AttributeProto.AttributeType (onnx.proto); the values are fixed
// by the schema.
type attrKind int64

const (
	attrFloat attrKind = 1
	attrInt   attrKind = 2
	attrInts  attrKind = 7
)

// AttrInt returns an integer attribute (e.g. Softmax's axis).
func AttrInt(name string, v int64) Attr { return Attr{name: name, kind: attrInt, i: v} }

// AttrFloat returns a float attribute (e.g. LeakyRelu's alpha).
func AttrFloat(name string, v float32) Attr { return Attr{name: name, kind: attrFloat, f: v} }

// AttrInts returns a list-of-integers attribute (e.g. Transpose's perm).
func AttrInts(name string, v ...int64) Attr {
	return Attr{name: name, kind: attrInts, ints: append([]int64(nil), v...)}
}

// Model is a single-graph ONNX model under construction. The zero value is
// not useful; call [NewModel]. Methods return the model so calls can be
// chained; nothing is validated here, ONNX Runtime does that when loading.
type Model struct {
	name         string
	opset        int64
	inputs       [][]byte      // encoded ValueInfoProto
	outputs      [][]byte      // encoded ValueInfoProto
	nodes        [][]byte      // encoded NodeProto, in the order added (must be topological)
	initializers []initializer // in the order added (initializer.go)
	// DocString, if set, becomes ModelProto.doc_string.
	DocString string
}

// NewModel starts a model whose graph is called name (GraphProto.name),
// importing the default operator set at [OpsetVersion].
func NewModel(name string) *Model { return &Model{name: name, opset: OpsetVersion} }

// Opset sets the version of the default "ai.onnx" operator set the model
// imports (LayerNormalization, for one, needs 17).
func (m *Model) Opset(v int64) *Model {
	m.opset = v
	return m
}

// Input declares a graph input of the given element type and shape.
func (m *Model) Input(name string, elem DataType, dims ...Dim) *Model {
	m.inputs = append(m.inputs, valueInfo(name, elem, dims))
	return m
}

// Output declares a graph output of the given element type and shape.
func (m *Model) Output(name string, elem DataType, dims ...Dim) *Model {
	m.outputs = append(m.outputs, valueInfo(name, elem, dims))
	return m
}

// Node appends a node running opType (an operator of the default domain) on
// the named inputs, producing the named outputs. Nodes must be added in
// topological order.
func (m *Model) Node(opType string, inputs, outputs []string, attrs ...Attr) *Model {
	// NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
	// domain (7) is left out: absent means the default "ai.onnx" domain.
	var b []byte
	for _, in := range inputs {
		b = appendString(b, 1, in)
	}
	for _, out := range outputs {
		b = appendString(b, 2, out)
	}
	// A node name is optional, but ONNX Runtime uses it in error messages and
	// profiles, so name each node after its first output.
	if len(outputs) > 0 {
		b = appendString(b, 3, opType+"_"+outputs[0])
	}
	b = appendString(b, 4, opType)
	for _, a := range attrs {
		b = appendMessage(b, 5, a.encode())
	}
	m.nodes = append(m.nodes, b)
	return m
}

// Bytes encodes the model as a serialized ModelProto, ready to be written to
// a model.onnx file.
func (m *Model) Bytes() []byte {
	var buf bytes.Buffer
	buf.Grow(m.size())
	m.Encode(&buf) // a bytes.Buffer never fails
	return buf.Bytes()
}

// Encode writes the serialized ModelProto to w, producing each initializer's
// data as it goes, so a large model never sits in memory whole.
func (m *Model) Encode(w io.Writer) error {
	head, graphTail := m.header()
	if _, err := w.Write(head); err != nil {
		return err
	}
	for _, t := range m.initializers {
		if err := t.writeTo(w); err != nil {
			return err
		}
	}
	_, err := w.Write(graphTail)
	return err
}

// header returns the encoded model up to its first initializer (ModelProto
// fields before the graph, the graph's tag and length, its nodes and name),
// and the rest after the last (graph inputs and outputs, then the opset).
func (m *Model) header() (head, tail []byte) {
	// GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
	var g []byte
	for _, n := range m.nodes {
		g = appendMessage(g, 1, n)
	}
	g = appendString(g, 2, m.name)
	for _, v := range m.inputs {
		tail = appendMessage(tail, 11, v)
	}
	for _, v := range m.outputs {
		tail = appendMessage(tail, 12, v)
	}
	graphLen := len(g) + len(tail)
	for _, t := range m.initializers {
		graphLen += protowire.SizeTag(5) + protowire.SizeBytes(t.encodedLen())
	}

	// ModelProto: ir_version = 1, producer_name = 2, producer_version = 3,
	// doc_string = 6, graph = 7, opset_import = 8. ir_version and at least
	// one opset_import are required for a loader to accept the model.
	head = appendVarintField(head, 1, IRVersion)
	head = appendString(head, 2, ProducerName)
	head = appendString(head, 3, "1")
	if m.DocString != "" {
		head = appendString(head, 6, m.DocString)
	}
	head = protowire.AppendTag(head, 7, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(graphLen))
	head = append(head, g...)

	// OperatorSetIdProto: domain = 1, version = 2. The empty domain is the
	// default "ai.onnx" operator set; it is written explicitly anyway, as the
	// Python onnx helpers do.
	var opset []byte
	opset = appendString(opset, 1, "")
	opset = appendVarintField(opset, 2, uint64(m.opset))
	tail = appendMessage(tail, 8, opset)
	return head, tail
}

// size is the length of the encoded model.
func (m *Model) size() int {
	head, tail := m.header()
	n := len(head) + len(tail)
	for _, t := range m.initializers {
		n += protowire.SizeTag(5) + protowire.SizeBytes(t.encodedLen())
	}
	return n
}

// valueInfo encodes a ValueInfoProto describing a tensor.
func valueInfo(name string, elem DataType, dims []Dim) []byte {
	// TensorShapeProto.Dimension: dim_value = 1, dim_param = 2 (a oneof).
	// TensorShapeProto: dim = 1. A present but empty shape means a scalar;
	// an absent shape would mean "unknown rank", which we never want.
	var shape []byte
	for _, d := range dims {
		var db []byte
		if d.Param != "" {
			db = appendString(db, 2, d.Param)
		} else {
			db = appendVarintField(db, 1, uint64(d.Value))
		}
		shape = appendMessage(shape, 1, db)
	}
	// TypeProto.Tensor: elem_type = 1, shape = 2.
	var tensor []byte
	tensor = appendVarintField(tensor, 1, uint64(elem))
	tensor = appendMessage(tensor, 2, shape)
	// TypeProto: tensor_type = 1 (one arm of the value oneof).
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	// ValueInfoProto: name = 1, type = 2 (type is required for graph inputs
	// and outputs).
	var b []byte
	b = appendString(b, 1, name)
	b = appendMessage(b, 2, typ)
	return b
}

// encode encodes an AttributeProto.
func (a Attr) encode() []byte {
	// AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20. Since IR
	// version 2 the type discriminator is required, so that proto3 readers
	// (which cannot tell "unset" from zero) know which value field is meant.
	var b []byte
	b = appendString(b, 1, a.name)
	switch a.kind {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarintField(b, 3, uint64(a.i))
	case attrInts:
		// proto2 "repeated int64" without [packed=true]: one tag per
		// element. (Parsers accept packed too, but this is canonical.)
		for _, v := range a.ints {
			b = appendVarintField(b, 8, uint64(v))
		}
	}
	b = appendVarintField(b, 20, uint64(a.kind))
	return b
}

// appendString appends a length-delimited string field.
func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendMessage appends an already-encoded sub-message as a length-delimited
// field.
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// appendVarintField appends an integer field (int32, int64 or enum; negative
// int64 values are encoded as their two's complement, as protobuf requires).
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
