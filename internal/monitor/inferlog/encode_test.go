package inferlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// encodeRecord runs r through the capture and the encoder as the logger does.
func encodeRecord(t testing.TB, cp capturer, r *core.Record) Entry {
	t.Helper()
	c := &capture{seq: 7, sample: 0.5}
	cp.fill(c, r)
	c.setRequestID(0xabc)
	line := appendEntry(nil, c)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("entry is not one line: %q", line)
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("entry %s is not JSON: %v", line, err)
	}
	e.expand() // as Query reads it
	return e
}

// TestBinaryDataReadsBackAsJSON: with tensor_data "binary" the line carries numeric
// data as base64 of its bytes, and what Query answers is the same entry, number for
// number, as with "json" (NaN and ±Inf included).
func TestBinaryDataReadsBackAsJSON(t *testing.T) {
	r := &core.Record{Model: "m", Version: "1", ID: "r", Start: time.Unix(1, 0), Inputs: []*tensor.Tensor{
		{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1, 4}, Data: le32(0.1, float32(math.NaN()), float32(math.Inf(-1)), 3e38)},
		{Name: "n", DType: tensor.Int64, Shape: tensor.Shape{2}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 7), math.MaxUint64)},
		{Name: "s", DType: tensor.Bytes, Shape: tensor.Shape{1}, Data: tensor.AppendBytesElement(nil, []byte("hé"))},
	}}
	bin := encodeRecord(t, capturer{maxBytes: 1 << 10, raw: true}, r)
	js := encodeRecord(t, capturer{maxBytes: 1 << 10}, r)
	if diff := cmp.Diff(js, bin); diff != "" {
		t.Fatalf("binary and JSON data read back differently (-json +binary):\n%s", diff)
	}
	c := &capture{}
	(&capturer{maxBytes: 1 << 10, raw: true}).fill(c, r)
	if line := string(appendEntry(nil, c)); !strings.Contains(line, `"data_b64":"`) || !strings.Contains(line, `"data":["hé"]`) {
		t.Fatalf("binary line: %s", line)
	}
}

func TestEntryFields(t *testing.T) {
	start := time.Date(2026, 12, 6, 17, 0, 0, 123456789, time.UTC)
	r := record("m\n", "2", "client-1", start)
	r.Route = core.RouteShadow
	r.Err = errors.New(`bad "thing"`)
	r.Outputs = nil
	got := encodeRecord(t, capturer{maxBytes: 1 << 10}, r)
	want := Entry{RequestID: "0000000000000abc0000000000000007", ClientRequestID: "client-1",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Timestamp: start, Model: "m\n", Version: "2", Route: "shadow",
		Status: "error", Error: `bad "thing"`, LatencySeconds: 0.0015, SamplingFraction: 0.5,
		Inputs:  []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Data: json.RawMessage(`[1,2.5,-3]`)}},
		Outputs: []Tensor{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("entry (-want +got):\n%s", d)
	}
}

func TestEveryDatatypeEncodes(t *testing.T) {
	le := func(bs ...byte) []byte { return bs }
	for _, tc := range []struct {
		dt   tensor.DType
		data []byte
		want string
	}{
		{tensor.Bool, le(1, 0), `[true,false]`},
		{tensor.Uint8, le(255), `[255]`},
		{tensor.Int8, le(0xff), `[-1]`},
		{tensor.Uint16, le(0xff, 0xff), `[65535]`},
		{tensor.Int16, le(0xfe, 0xff), `[-2]`},
		{tensor.Uint32, le(1, 0, 0, 0), `[1]`},
		{tensor.Int32, le(0xfd, 0xff, 0xff, 0xff), `[-3]`},
		{tensor.Uint64, le(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), `[18446744073709551615]`},
		{tensor.Int64, le(0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), `[-4]`},
		{tensor.FP16, le(0x00, 0x3c), `[1]`},
		{tensor.BF16, le(0x80, 0x3f), `[1]`},
		{tensor.FP32, fp32("", nil, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0.1).Data, `["NaN","Inf","-Inf",0.1]`},
		{tensor.FP64, le(0, 0, 0, 0, 0, 0, 0xf8, 0x3f), `[1.5]`},
		{tensor.Bytes, bytesT("", "a\"b", "\x00\xff", "é").Data, `["a\"b","\u0000\ufffd","é"]`},
	} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			got := string(appendData(nil, tc.dt, tc.data))
			if got != tc.want {
				t.Fatalf("appendData(%s, %v) = %s, want %s", tc.dt, tc.data, got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("appendData(%s) = %s: not JSON", tc.dt, got)
			}
		})
	}
}

func TestTruncationKeepsWholeElementsAndFlags(t *testing.T) {
	r := record("m", "1", "", time.Now())
	r.Inputs = []*tensor.Tensor{fp32("x", tensor.Shape{5}, 1, 2, 3, 4, 5), bytesT("s", "abc", "defgh")}
	r.Outputs = []*tensor.Tensor{fp32("y", tensor.Shape{1}, 9)}
	// 10 bytes: two whole FP32 elements of x (8), nothing of s or y.
	got := encodeRecord(t, capturer{maxBytes: 10}, r)
	if !got.Truncated {
		t.Fatal("entry over the cap is not flagged truncated")
	}
	want := []string{`[1,2]`, `[]`}
	for i, in := range got.Inputs {
		if string(in.Data) != want[i] || !in.Truncated {
			t.Errorf("input %s data = %s truncated = %v, want %s truncated", in.Name, in.Data, in.Truncated, want[i])
		}
	}
	if string(got.Outputs[0].Data) != `[]` || got.Outputs[0].Shape[0] != 1 {
		t.Errorf("output y = %+v, want no data but its shape", got.Outputs[0])
	}
	// 20+7 bytes: x whole, "abc" (4+3) of s.
	got = encodeRecord(t, capturer{maxBytes: 27}, r)
	if string(got.Inputs[1].Data) != `["abc"]` {
		t.Errorf("BYTES input cut at 7 bytes = %s, want [\"abc\"]", got.Inputs[1].Data)
	}
	got = encodeRecord(t, capturer{maxBytes: 1 << 10}, r)
	if got.Truncated || got.Inputs[0].Truncated {
		t.Errorf("entry under the cap flagged truncated: %+v", got)
	}
}

func TestRedactedTensorsHideTheirData(t *testing.T) {
	r := record("m", "1", "", time.Now())
	r.Inputs = append(r.Inputs, bytesT("ssn", "123-45-6789"))
	got := encodeRecord(t, capturer{maxBytes: 1 << 10, redact: set([]string{"ssn", "y"})}, r)
	if string(got.Inputs[1].Data) != `"[redacted]"` || string(got.Outputs[0].Data) != `"[redacted]"` {
		t.Fatalf("redacted tensors = %s, %s; want \"[redacted]\"", got.Inputs[1].Data, got.Outputs[0].Data)
	}
	if string(got.Inputs[0].Data) != `[1,2.5,-3]` {
		t.Fatalf("input x = %s, want its data", got.Inputs[0].Data)
	}
}

// FuzzAppendData: any data of any datatype encodes as a JSON array, whatever its length.
func FuzzAppendData(f *testing.F) {
	f.Add(uint8(tensor.FP32), []byte{0, 0, 0x80, 0x7f, 1})
	f.Add(uint8(tensor.Bytes), []byte{3, 0, 0, 0, 'a', 'b'})
	f.Fuzz(func(t *testing.T, dt uint8, data []byte) {
		b := appendData(nil, tensor.DType(dt), data)
		var v []any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("appendData(%d, %x) = %s: %v", dt, data, b, err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	r := record("model", "1", "client-1", time.Now())
	r.Inputs = []*tensor.Tensor{fp32("x", tensor.Shape{1, 16}, make([]float32, 16)...)}
	c := &capture{}
	cp := capturer{maxBytes: 1 << 14}
	cp.fill(c, r)
	var line []byte
	b.ReportAllocs()
	for b.Loop() {
		line = appendEntry(line[:0], c)
	}
	b.ReportMetric(float64(len(line)), "bytes/entry")
}

func le32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}
