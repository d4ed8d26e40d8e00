package python

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/ferryml/ferry/internal/tensor"
)

// Frame kinds. runtime/ferry_python_runner.py documents the protocol; keep them in step.
const (
	kindInit     = 'I' // Ferry -> runner: JSON args for initialize()
	kindExecute  = 'E' // Ferry -> runner: a batch of requests
	kindFinalize = 'F' // Ferry -> runner: call finalize() and exit
	kindReady    = 'R' // runner -> Ferry: initialize() done; JSON facts
	kindFatal    = 'X' // runner -> Ferry: initialize() failed; UTF-8 message
	kindResults  = 'O' // runner -> Ferry: one response or error per request
	kindDone     = 'D' // runner -> Ferry: finalize() done
)

// frame is one message: its kind and the payload after the kind byte.
type frame struct {
	kind    byte
	payload []byte
}

// frameBuilder collects a frame's parts: small headers are appended into shared chunks,
// tensor data is referenced as is, so a request's bytes are written without a copy.
type frameBuilder struct {
	parts [][]byte
	cur   []byte
	size  int
}

func (b *frameBuilder) flush() {
	if len(b.cur) > 0 {
		b.parts = append(b.parts, b.cur)
		b.cur = nil
	}
}

func (b *frameBuilder) data(p []byte) {
	b.flush()
	b.parts = append(b.parts, p)
	b.size += len(p)
}

func (b *frameBuilder) bytes(p []byte) { b.cur = append(b.cur, p...); b.size += len(p) }
func (b *frameBuilder) u8(v uint8)     { b.cur = append(b.cur, v); b.size++ }
func (b *frameBuilder) u16(v uint16)   { b.cur = binary.LittleEndian.AppendUint16(b.cur, v); b.size += 2 }
func (b *frameBuilder) u32(v uint32)   { b.cur = binary.LittleEndian.AppendUint32(b.cur, v); b.size += 4 }
func (b *frameBuilder) u64(v uint64)   { b.cur = binary.LittleEndian.AppendUint64(b.cur, v); b.size += 8 }

func (b *frameBuilder) str16(s string) error {
	if len(s) > math.MaxUint16 {
		return fmt.Errorf("name of %d bytes is too long", len(s))
	}
	b.u16(uint16(len(s)))
	b.bytes([]byte(s))
	return nil
}

func (b *frameBuilder) tensor(t *tensor.Tensor) error {
	if err := b.str16(t.Name); err != nil {
		return err
	}
	dt := t.DType.String()
	b.u8(uint8(len(dt)))
	b.bytes([]byte(dt))
	if len(t.Shape) > math.MaxUint8 {
		return fmt.Errorf("tensor %q: rank %d is too high", t.Name, len(t.Shape))
	}
	b.u8(uint8(len(t.Shape)))
	for _, d := range t.Shape {
		b.u64(uint64(d))
	}
	b.u64(uint64(len(t.Data)))
	b.data(t.Data)
	return nil
}

// encodeExecute builds an execute frame: for each request its inputs and the names of
// the outputs it wants.
func encodeExecute(reqs [][]*tensor.Tensor, want [][]string) (*frameBuilder, error) {
	b := &frameBuilder{}
	b.u32(uint32(len(reqs)))
	for i, in := range reqs {
		b.u32(uint32(len(in)))
		for _, t := range in {
			if err := b.tensor(t); err != nil {
				return nil, err
			}
		}
		b.u32(uint32(len(want[i])))
		for _, name := range want[i] {
			if err := b.str16(name); err != nil {
				return nil, err
			}
		}
	}
	b.flush()
	return b, nil
}

// writeFrame writes the length, the kind and the parts, then flushes.
func writeFrame(w *bufio.Writer, kind byte, b *frameBuilder) error {
	size := 1
	if b != nil {
		size += b.size
	}
	var head [9]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(size))
	head[8] = kind
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	if b != nil {
		for _, p := range b.parts {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
	return w.Flush()
}

// readFrame reads one frame. io.EOF means the pipe closed between frames.
func readFrame(r io.Reader, limit uint64) (frame, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return frame{}, err
	}
	n := binary.LittleEndian.Uint64(head[:])
	if n == 0 || n > limit {
		return frame{}, fmt.Errorf("frame of %d bytes (limit %d)", n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, fmt.Errorf("frame cut short: %w", err)
	}
	return frame{kind: buf[0], payload: buf[1:]}, nil
}

// result is what the runner sent for one request: outputs, or an error code and message.
type result struct {
	outputs []*tensor.Tensor
	failed  bool
	code    string
	message string
}

var errShort = errors.New("payload ends early")

// decoder walks a payload; the first failure sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) tensor() *tensor.Tensor {
	name := string(d.take(uint64(d.u16())))
	dtName := string(d.take(uint64(d.u8())))
	rank := d.u8()
	shape := make(tensor.Shape, rank)
	for i := range shape {
		shape[i] = int64(d.u64())
	}
	data := d.take(d.u64())
	if d.err != nil {
		return nil
	}
	dt, err := tensor.ParseDType(dtName)
	if err != nil {
		d.err = fmt.Errorf("output %q: %w", name, err)
		return nil
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}
}

// decodeResults reads an execute-results payload. Output data shares the payload.
func decodeResults(payload []byte) ([]result, error) {
	d := &decoder{b: payload}
	n := d.u32()
	if d.err == nil && uint64(n) > uint64(len(payload)) {
		return nil, fmt.Errorf("%d responses cannot fit %d bytes", n, len(payload))
	}
	res := make([]result, 0, n)
	for range n {
		var r result
		switch d.u8() {
		case 0:
			k := d.u32()
			for range k {
				if t := d.tensor(); t != nil {
					r.outputs = append(r.outputs, t)
				}
				if d.err != nil {
					break
				}
			}
		case 1:
			r.failed = true
			r.code = string(d.take(uint64(d.u8())))
			r.message = string(d.take(uint64(d.u32())))
		default:
			if d.err == nil {
				d.err = errors.New("bad response status byte")
			}
		}
		if d.err != nil {
			return nil, fmt.Errorf("results frame: %w", d.err)
		}
		res = append(res, r)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("results frame: %w", d.err)
	}
	return res, nil
}
