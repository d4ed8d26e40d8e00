package inferlog

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ferryml/ferry/internal/tensor"
)

// Encoding is hand-written appends with strconv: encoding/json's reflection would cost
// more than the request it logs. The entry's field names are Entry's json tags.

const redactedJSON = `"[redacted]"`

// setRequestID writes the entry's request id: the logger's random prefix and the
// capture's sequence number, 32 hex digits, unique across restarts.
func (c *capture) setRequestID(prefix uint64) {
	const hex = "0123456789abcdef"
	for i := range 16 {
		c.reqID[i] = hex[(prefix>>(60-4*i))&0xf]
		c.reqID[16+i] = hex[(c.seq>>(60-4*i))&0xf]
	}
}

// appendEntry appends c as one JSON line (with its newline).
func appendEntry(b []byte, c *capture) []byte {
	b = append(b, `{"request_id":"`...)
	b = append(b, c.reqID[:]...)
	b = append(b, '"')
	if c.clientID != "" {
		b = appendField(b, "client_request_id", c.clientID)
	}
	if c.traceID != "" {
		b = appendField(b, "trace_id", c.traceID)
	}
	b = append(b, `,"timestamp":"`...)
	b = c.start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "model", c.model)
	b = appendField(b, "version", c.version)
	b = appendField(b, "route", c.route)
	if c.failed {
		b = appendField(b, "status", statusError)
		b = appendField(b, "error", c.errMsg)
	} else {
		b = appendField(b, "status", statusOK)
	}
	b = append(b, `,"latency_seconds":`...)
	b = strconv.AppendFloat(b, c.latency.Seconds(), 'g', -1, 64)
	b = append(b, `,"sampling_fraction":`...)
	b = strconv.AppendFloat(b, c.sample, 'g', -1, 64)
	b = append(b, `,"inputs":`...)
	b = appendTensors(b, c, c.inputs)
	b = append(b, `,"outputs":`...)
	b = appendTensors(b, c, c.outputs)
	if c.trunc {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, "}\n"...)
}

// Entry statuses.
const (
	statusOK    = "ok"
	statusError = "error"
)

func appendField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendTensors(b []byte, c *capture, ts []tensorCap) []byte {
	b = append(b, '[')
	for i := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTensor(b, c, &ts[i])
	}
	return append(b, ']')
}

// appendTensor appends one tensor as the V2 JSON protocol writes it (flat data).
func appendTensor(b []byte, c *capture, t *tensorCap) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, t.name)
	b = append(b, `,"datatype":"`...)
	b = append(b, t.dtype.String()...)
	b = append(b, `","shape":[`...)
	for i, d := range c.shape(t) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"data":`...)
	if t.redacted {
		b = append(b, redactedJSON...)
	} else {
		b = appendData(b, t.dtype, c.data(t))
	}
	if t.truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}')
}

// appendData appends raw little-endian tensor data as a JSON array: numbers, booleans,
// or strings for BYTES. NaN and ±Inf, which JSON numbers cannot hold, are the strings
// "NaN", "Inf" and "-Inf".
func appendData(b []byte, dt tensor.DType, d []byte) []byte {
	b = append(b, '[')
	if dt == tensor.Bytes {
		for i := 0; len(d) >= 4; i++ {
			n := int(binary.LittleEndian.Uint32(d))
			if n > len(d)-4 {
				break
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringBytes(b, d[4:4+n])
			d = d[4+n:]
		}
		return append(b, ']')
	}
	size := dt.Size()
	if size == 0 {
		return append(b, ']')
	}
	for i := 0; i+size <= len(d); i += size {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElem(b, dt, d[i:])
	}
	return append(b, ']')
}

func appendElem(b []byte, dt tensor.DType, e []byte) []byte {
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		return strconv.AppendBool(b, e[0] != 0)
	case tensor.Uint8:
		return strconv.AppendUint(b, uint64(e[0]), 10)
	case tensor.Int8:
		return strconv.AppendInt(b, int64(int8(e[0])), 10)
	case tensor.Uint16:
		return strconv.AppendUint(b, uint64(le.Uint16(e)), 10)
	case tensor.Int16:
		return strconv.AppendInt(b, int64(int16(le.Uint16(e))), 10)
	case tensor.Uint32:
		return strconv.AppendUint(b, uint64(le.Uint32(e)), 10)
	case tensor.Int32:
		return strconv.AppendInt(b, int64(int32(le.Uint32(e))), 10)
	case tensor.Uint64:
		return strconv.AppendUint(b, le.Uint64(e), 10)
	case tensor.Int64:
		return strconv.AppendInt(b, int64(le.Uint64(e)), 10)
	case tensor.FP16:
		return appendFloat(b, float64(tensor.FP16ToFloat32(le.Uint16(e))), 32)
	case tensor.BF16:
		return appendFloat(b, float64(tensor.BF16ToFloat32(le.Uint16(e))), 32)
	case tensor.FP32:
		return appendFloat(b, float64(math.Float32frombits(le.Uint32(e))), 32)
	case tensor.FP64:
		return appendFloat(b, math.Float64frombits(le.Uint64(e)), 64)
	}
	return append(b, "null"...)
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendStringBytes is appendString of a BYTES element, without copying it.
func appendStringBytes(b, s []byte) []byte {
	if len(s) == 0 {
		return append(b, `""`...)
	}
	return appendString(b, unsafe.String(&s[0], len(s)))
}

// appendString appends s as a JSON string. Control characters are escaped (a
// newline in a model name or a payload must not split or forge a log line) and invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
