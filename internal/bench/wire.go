package bench

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// wireCodec is the gRPC codec of the load generator's inference calls. It sends an
// encodedRequest as it is and reads responses into inferReply or streamReply, which
// keep only what a load generator checks; any other message goes through protobuf.
// It is named "proto" so that the server decodes the calls with its own protobuf codec.
type wireCodec struct{}

// encodedRequest is a ModelInferRequest in protobuf wire format, shared by every call
// that sends it and never modified.
type encodedRequest []byte

// inferReply is what a load generator checks of a ModelInferResponse: that it has
// outputs.
type inferReply struct{ outputs int }

// streamReply is a ModelStreamInferResponse: the error message, else the response.
type streamReply struct {
	errMsg string
	infer  inferReply
}

// The field numbers of grpc_service.proto that the replies read.
const (
	inferResponseOutputs      = 5 // ModelInferResponse.outputs
	streamResponseError       = 1 // ModelStreamInferResponse.error_message
	streamResponseInferResult = 2 // ModelStreamInferResponse.infer_response
)

// protoCodec is grpc-go's, for every message but the load generator's own.
var protoCodec = encoding.GetCodecV2(proto.Name)

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(encodedRequest); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // no copy: read before Unmarshal returns
	} else {
		b = data.Materialize()
	}
	switch r := v.(type) {
	case *inferReply:
		*r = inferReply{}
		return r.parse(b)
	case *streamReply:
		*r = streamReply{}
		return r.parse(b)
	}
	return protoCodec.Unmarshal(data, v)
}

// err is the reply's fault, if any.
func (r inferReply) err() error {
	if r.outputs == 0 {
		return errors.New("response without outputs")
	}
	return nil
}

// parse adds what b holds to r; like protobuf, it merges a message that appears twice.
func (r *inferReply) parse(b []byte) error {
	return eachBytesField(b, func(num protowire.Number, _ []byte) error {
		if num == inferResponseOutputs {
			r.outputs++
		}
		return nil
	})
}

func (r *streamReply) parse(b []byte) error {
	return eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case streamResponseError:
			r.errMsg = string(v)
		case streamResponseInferResult:
			return r.infer.parse(v)
		}
		return nil
	})
}

// eachBytesField calls f with the number and contents of each length-delimited field
// of the message in b, and checks that the other fields are well formed. A field of
// another wire type is not the one its number names (protobuf keeps it as unknown).
func eachBytesField(b []byte, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("response: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return fmt.Errorf("response: field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("response: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}
