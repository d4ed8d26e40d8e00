package bench

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// inferReply is what a load generator checks of a ModelInferResponse: that it has
// outputs. Reading only that, with protowire, costs a fraction of a protobuf decode.
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

// readInferReply reads a ModelInferResponse's wire bytes.
func readInferReply(b []byte) (inferReply, error) {
	var r inferReply
	return r, r.parse(b)
}

// readStreamReply reads a ModelStreamInferResponse's wire bytes.
func readStreamReply(b []byte) (streamReply, error) {
	var r streamReply
	return r, r.parse(b)
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
