package onnxgen

import "io"

// msDomain is ONNX Runtime's contrib operator domain: its fused kernels
// (MultiHeadAttention among them) live there, outside the ONNX standard.
const msDomain = "com.microsoft"

// msOpset is the version of the com.microsoft operator set a model imports;
// ONNX Runtime has only ever published version 1.
const msOpset = 1

// contribNode appends a node running the com.microsoft operator opType. An
// empty input name leaves that optional input out, as ONNX's encoding says.
func (m *Model) contribNode(opType string, inputs, outputs []string, attrs ...Attr) {
	m.Node(opType, inputs, outputs, attrs...)
	// NodeProto.domain = 7. Field order does not matter to a protobuf
	// parser, so the domain can follow the fields Node wrote.
	last := len(m.nodes) - 1
	m.nodes[last] = appendString(m.nodes[last], 7, msDomain)
}

// msOpsetImport is a ModelProto field importing the com.microsoft operator
// set. ModelProto.opset_import (8) is repeated, and a repeated field's
// elements may appear anywhere in a message, so appending this after an
// encoded model adds the import without touching the default one Encode
// writes.
func msOpsetImport() []byte {
	var opset []byte
	opset = appendString(opset, 1, msDomain)
	opset = appendVarintField(opset, 2, msOpset)
	return appendMessage(nil, 8, opset)
}

// writeMSOpsetImport writes [msOpsetImport] to w, after the model.
func writeMSOpsetImport(w io.Writer) error {
	_, err := w.Write(msOpsetImport())
	return err
}
