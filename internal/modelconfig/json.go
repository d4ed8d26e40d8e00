package modelconfig

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/ferryml/ferry/internal/inference"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MarshalJSON prints cfg the way Triton's config endpoints do (protobuf's
// JSON printer with preserve_proto_field_names and
// always_print_primitive_fields, then int64 fields turned back into numbers):
//
//   - proto field names, in declaration order;
//   - int64 and uint64 fields (dims, max_queue_delay_microseconds, ...) as JSON
//     numbers, where Go's protojson prints strings that Triton's clients do not
//     expect;
//   - enums as names; scalars, lists and maps printed even when empty or zero;
//     unset messages and unset oneof members left out;
//   - map entries sorted by key.
//
// ParseJSON reads the output back.
func MarshalJSON(cfg *inference.ModelConfig) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("modelconfig: marshal JSON: nil config")
	}
	e := jsonEncoder{buf: make([]byte, 0, 1024)}
	e.message(cfg.ProtoReflect())
	if e.err != nil {
		return nil, fmt.Errorf("modelconfig: marshal JSON: %w", e.err)
	}
	return e.buf, nil
}

type jsonEncoder struct {
	buf []byte
	err error
}

func (e *jsonEncoder) message(m protoreflect.Message) {
	e.buf = append(e.buf, '{')
	fields := m.Descriptor().Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !printed(m, fd) {
			continue
		}
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		e.str(string(fd.Name()))
		e.buf = append(e.buf, ':')
		switch {
		case fd.IsList():
			e.list(fd, m.Get(fd).List())
		case fd.IsMap():
			e.mapValue(fd, m.Get(fd).Map())
		default:
			e.value(fd, m.Get(fd))
		}
	}
	e.buf = append(e.buf, '}')
}

// printed reports whether fd appears in the output: like
// always_print_primitive_fields, every scalar, list and map is printed, but a
// message or oneof member only when set.
func printed(m protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	if fd.IsList() || fd.IsMap() {
		return true
	}
	if fd.ContainingOneof() != nil || fd.Message() != nil {
		return m.Has(fd)
	}
	return true
}

func (e *jsonEncoder) list(fd protoreflect.FieldDescriptor, l protoreflect.List) {
	e.buf = append(e.buf, '[')
	for i := range l.Len() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.value(fd, l.Get(i))
	}
	e.buf = append(e.buf, ']')
}

func (e *jsonEncoder) mapValue(fd protoreflect.FieldDescriptor, m protoreflect.Map) {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, compareKeys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(k.String()) // JSON object keys are strings, numeric keys included
		e.buf = append(e.buf, ':')
		e.value(fd.MapValue(), m.Get(k))
	}
	e.buf = append(e.buf, '}')
}

// compareKeys orders map keys numerically for integer keys, false before true
// for bool keys and bytewise for strings; one map's keys share a kind.
func compareKeys(a, b protoreflect.MapKey) int {
	switch x := a.Interface().(type) {
	case string:
		return cmp.Compare(x, b.Interface().(string))
	case bool:
		return cmp.Compare(b2i(x), b2i(b.Interface().(bool)))
	case int32, int64:
		return cmp.Compare(a.Int(), b.Int())
	default:
		return cmp.Compare(a.Uint(), b.Uint())
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *jsonEncoder) value(fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case protoreflect.FloatKind:
		e.float(v.Float(), 32)
	case protoreflect.DoubleKind:
		e.float(v.Float(), 64)
	case protoreflect.StringKind:
		e.str(v.String())
	case protoreflect.BytesKind:
		e.str(base64.StdEncoding.EncodeToString(v.Bytes()))
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			e.str(string(ev.Name()))
		} else {
			e.buf = strconv.AppendInt(e.buf, int64(v.Enum()), 10)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		e.message(v.Message())
	default:
		e.err = fmt.Errorf("field %s: unsupported kind %v", fd.FullName(), fd.Kind())
	}
}

// float prints finite values as encoding/json does and the others as the
// strings protobuf's JSON mapping uses ("NaN", "Infinity", "-Infinity").
func (e *jsonEncoder) float(f float64, bits int) {
	switch {
	case math.IsNaN(f):
		e.str("NaN")
	case math.IsInf(f, 1):
		e.str("Infinity")
	case math.IsInf(f, -1):
		e.str("-Infinity")
	default:
		var b []byte
		var err error
		if bits == 32 {
			b, err = json.Marshal(float32(f))
		} else {
			b, err = json.Marshal(f)
		}
		if err != nil {
			e.err = err
			return
		}
		e.buf = append(e.buf, b...)
	}
}

// str appends s as a JSON string without HTML escaping, as protobuf does.
func (e *jsonEncoder) str(s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		e.err = err
		return
	}
	e.buf = append(e.buf, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
}
