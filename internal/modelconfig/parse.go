package modelconfig

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ferryml/ferry/internal/inference"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Parse reads config.pbtxt text strictly: an unknown field, a repeated
// singular field, two schedulers, a bad enum name or a syntax error is an
// error naming the offending field or value with its line and column, e.g.
// "config.pbtxt: (line 2:1): unknown field: max_batch".
func Parse(text []byte) (*inference.ModelConfig, error) {
	cfg := new(inference.ModelConfig)
	if err := (prototext.UnmarshalOptions{}).Unmarshal(text, cfg); err != nil {
		return nil, parseError("config.pbtxt", err)
	}
	return cfg, nil
}

// ParseJSON reads the JSON form of a config, as Triton's repository load
// "config" parameter carries it. Field names are the proto names
// (max_batch_size; protojson also accepts the lowerCamelCase JSON names),
// int64 fields may be numbers or strings, enums names or numbers. Unknown
// fields are rejected by name.
func ParseJSON(b []byte) (*inference.ModelConfig, error) {
	cfg := new(inference.ModelConfig)
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, cfg); err != nil {
		return nil, parseError("config JSON", err)
	}
	return cfg, nil
}

// protoParseError names the input in place of the library's "proto:" prefix,
// which carries a randomly chosen space or no-break space; it unwraps to the
// library's error (errors.Is(err, proto.Error) holds).
type protoParseError struct {
	what string
	err  error
}

func parseError(what string, err error) error { return &protoParseError{what, err} }

func (e *protoParseError) Error() string {
	msg := e.err.Error()
	if rest, ok := strings.CutPrefix(msg, "proto:"); ok {
		msg = strings.TrimLeft(rest, " \u00a0")
	}
	return fmt.Sprintf("%s: %s", e.what, msg)
}

func (e *protoParseError) Unwrap() error { return e.err }

// HasMaxBatchSize reports whether the config.pbtxt text sets max_batch_size,
// even to 0, which the generated proto3 type cannot tell from unset; pass the
// result to AutoComplete. Text that does not parse gives false; Parse reports
// the error.
func HasMaxBatchSize(text []byte) bool {
	return hasMaxBatchSize(text, prototext.UnmarshalOptions{}.Unmarshal)
}

// HasMaxBatchSizeJSON is HasMaxBatchSize for the JSON form ParseJSON reads.
func HasMaxBatchSizeJSON(b []byte) bool {
	return hasMaxBatchSize(b, protojson.UnmarshalOptions{}.Unmarshal)
}

func hasMaxBatchSize(b []byte, unmarshal func([]byte, proto.Message) error) bool {
	p, err := presenceDescriptor()
	if err != nil {
		return false
	}
	m := dynamicpb.NewMessage(p.config)
	if err := unmarshal(b, m); err != nil {
		return false
	}
	return m.Has(p.maxBatch)
}

// presenceDescriptor builds, once, a private copy of ModelConfig's descriptor
// in which max_batch_size is a proto3 "optional" field, so a parse records
// whether it was present. The copy is never registered globally.
var presenceDescriptor = sync.OnceValues(func() (presence, error) {
	fdp := protodesc.ToFileDescriptorProto(inference.File_model_config_proto)
	var mp *descriptorpb.DescriptorProto
	for _, m := range fdp.GetMessageType() {
		if m.GetName() == "ModelConfig" {
			mp = m
		}
	}
	if mp == nil {
		return presence{}, fmt.Errorf("modelconfig: ModelConfig missing from %s", fdp.GetName())
	}
	for _, f := range mp.GetField() {
		if f.GetName() == "max_batch_size" {
			// Synthetic oneofs must follow the real ones, so append.
			f.Proto3Optional = proto.Bool(true)
			f.OneofIndex = proto.Int32(int32(len(mp.GetOneofDecl())))
			mp.OneofDecl = append(mp.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String("_max_batch_size")})
		}
	}
	file, err := protodesc.NewFile(fdp, new(protoregistry.Files))
	if err != nil {
		return presence{}, fmt.Errorf("modelconfig: presence descriptor: %w", err)
	}
	md := file.Messages().ByName("ModelConfig")
	fd := md.Fields().ByName("max_batch_size")
	if fd == nil || !fd.HasPresence() {
		return presence{}, fmt.Errorf("modelconfig: max_batch_size has no presence")
	}
	return presence{md, fd}, nil
})

type presence struct {
	config   protoreflect.MessageDescriptor
	maxBatch protoreflect.FieldDescriptor
}
