package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// FuzzReadDataFile feeds the --input-data reader arbitrary files, then builds requests
// from whatever it accepts, for a model with one input per datatype family. A file is
// user input: it may be refused with an error, never crash the generator, and every
// request built from it holds valid tensors.
func FuzzReadDataFile(f *testing.F) {
	f.Add([]byte(`{"data":[{"x":[1,2,3],"s":["a"],"b":[true]}]}`))
	f.Add([]byte(`{"data":[{"x":{"content":[[1,2],[3,4]],"shape":[2,2]}}],"validation_data":[]}`))
	f.Add([]byte(`{"data":[{"x":[1.5e300]},{"x":[-1]}]}`))
	f.Add([]byte(`{"data":[]}`))
	f.Fuzz(func(t *testing.T, file []byte) {
		entries, err := ReadDataFile(bytes.NewReader(file))
		if err != nil {
			return
		}
		for _, dt := range []tensor.DType{tensor.FP32, tensor.Int8, tensor.Bool, tensor.Bytes, tensor.FP16} {
			m := Model{Name: "m", MaxBatchSize: 4, Inputs: []Input{{Name: "x", DType: dt, Shape: tensor.Shape{-1, -1}}}}
			samples, err := Samples(m, 2, nil, Data{Mode: DataFile, Entries: entries})
			if err != nil {
				continue
			}
			for _, s := range samples {
				for _, x := range s {
					if err := x.Validate(); err != nil {
						t.Fatalf("%s: a request from an accepted file is invalid: %v", dt, err)
					}
				}
			}
		}
	})
}

// FuzzReadIntervals feeds the --request-intervals reader arbitrary files: it may refuse
// them, never crash, and what it accepts makes a schedule of positive, growing times.
func FuzzReadIntervals(f *testing.F) {
	f.Add([]byte("1000\n2000\n"))
	f.Add([]byte("\n 5 \n\n"))
	f.Add([]byte("3600000000"))
	f.Fuzz(func(t *testing.T, file []byte) {
		gaps, err := ReadIntervals(bytes.NewReader(file))
		if err != nil {
			return
		}
		sched, err := IntervalSchedule(gaps, 10*time.Millisecond)
		if err != nil {
			t.Fatalf("accepted intervals %v make no schedule: %v", gaps, err)
		}
		for i := 1; i < len(sched); i++ {
			if sched[i] <= sched[i-1] {
				t.Fatalf("schedule not growing at %d: %v", i, sched)
			}
		}
	})
}
