package inferlog

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
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
	b = appendTensors(b, c, c.inputs, c.raw)
	b = append(b, `,"outputs":`...)
	b = appendTensors(b, c, c.outputs, c.raw)
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
	return v2json.AppendString(b, v)
}

// appendTensors appends ts as a JSON array; with raw, numeric data goes as base64 of
// its little-endian bytes ("data_b64"), as the binary tensor extension carries it.
func appendTensors(b []byte, c *capture, ts []tensorCap, raw bool) []byte {
	b = append(b, '[')
	for i := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTensor(b, c, &ts[i], raw)
	}
	return append(b, ']')
}

// appendTensor appends one tensor as the V2 JSON protocol writes it (flat data).
func appendTensor(b []byte, c *capture, t *tensorCap, raw bool) []byte {
	b = append(b, `{"name":`...)
	b = v2json.AppendString(b, t.name)
	b = append(b, `,"datatype":"`...)
	b = append(b, t.dtype.String()...)
	b = append(b, `","shape":[`...)
	for i, d := range c.shape(t) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	switch {
	case t.redacted:
		b = append(b, `],"data":`...)
		b = append(b, redactedJSON...)
	case raw && t.dtype != tensor.Bytes && t.dtype.Valid():
		// A float's shortest decimal costs ~30 ns: a 256-feature row was 8 µs of the
		// dispatcher's CPU per request; base64 of its bytes is ~0.4 µs. Readers
		// (Query, ferry logs, the API) turn it back into V2 JSON numbers.
		b = append(b, `],"data_b64":"`...)
		b = appendBase64(b, c.data(t))
		b = append(b, '"')
	default:
		b = append(b, `],"data":`...)
		b = appendData(b, t.dtype, c.data(t))
	}
	if t.truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}')
}

// appendData appends raw little-endian tensor data as a JSON array, as the REST
// transport writes it (v2json). What V2 JSON cannot carry is still logged: NaN and ±Inf
// as the strings "NaN", "Inf" and "-Inf", invalid UTF-8 in BYTES as U+FFFD.
func appendData(b []byte, dt tensor.DType, d []byte) []byte {
	if !dt.Valid() { // never from core; v2json would loop on a zero element size
		return append(b, "[]"...)
	}
	t := tensor.Tensor{DType: dt, Data: d}
	if out, err := v2json.AppendData(b, &t); err == nil {
		return out
	}
	b = append(b, '[')
	if dt == tensor.Bytes {
		for i := 0; len(d) >= 4; i++ {
			n := int(binary.LittleEndian.Uint32(d))
			if n > len(d)-4 {
				break // malformed prefixes: core validates BYTES, so never from a request
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = v2json.AppendString(b, unsafe.String(unsafe.SliceData(d[4:]), n))
			d = d[4+n:]
		}
		return append(b, ']')
	}
	fs, err := t.Float64s() // only floats fail v2json: the values are exact
	if err != nil {
		return append(b, ']')
	}
	bits := 32
	if dt == tensor.FP64 {
		bits = 64
	}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, f, bits)
	}
	return append(b, ']')
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
