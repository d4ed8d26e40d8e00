package lane

import (
	"reflect"
	"testing"

	"github.com/ferryml/ferry/internal/core"
)

var v2MessageCases = []string{
	`{"id":"a","inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`,
	`{"inputs":[{"name":"x","datatype":"INT64","shape":[2],"data":[1,2]}],"outputs":[{"name":"y"}],"parameters":{"p":1}}`,
	`{"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":["\u00e9\ud800"]}]}`,
	`{"inputs":[]}`,                         // V2 without inputs: the general path's answer
	`{"inputs":[1]}`,                        // a V2 error, worded by the general path
	`{"inputs":[{"name":"x"}],"inputs":[]}`, // duplicate: the general path's error
	`{"in\u0070uts":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`, // an escaped key
	`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]} x`,    // trailing text
	`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}{}`,
	`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[01]}]}`,
	"{\"inputs\":[{\"name\":\"\xff\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
	`{"inputs":"no"}`,
	`{"name":"inputs","v":[1]}`, // "inputs" only as a value: a row
	`{"features":[1,2,3],"id":"r1"}`,
	`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"model_name":{"a":[1,{"b":null}]}}`,
	`[{"inputs":[]}]`,
	`null`,
}

// TestDecodeMessageMatchesGeneral: DecodeMessage, fast paths and all, answers every
// message as the general path alone does: the same request, row or error.
func TestDecodeMessageMatchesGeneral(t *testing.T) {
	for _, body := range v2MessageCases {
		checkMessage(t, []byte(body))
	}
}

// FuzzDecodeMessageMatchesGeneral is TestDecodeMessageMatchesGeneral on any bytes.
func FuzzDecodeMessageMatchesGeneral(f *testing.F) {
	for _, body := range v2MessageCases {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkMessage(t, body) })
}

func checkMessage(t *testing.T, body []byte) {
	t.Helper()
	limits := core.DefaultLimits()
	req, row, err := DecodeMessage(body, limits)
	wantReq, wantRow, wantErr := decodeGeneric(body, limits)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("DecodeMessage(%q): error %v, the general path's %v", body, err, wantErr)
	}
	if !reflect.DeepEqual(req, wantReq) || !reflect.DeepEqual(row, wantRow) {
		t.Fatalf("DecodeMessage(%q) = %+v, %v; the general path %+v, %v", body, req, row, wantReq, wantRow)
	}
}

// BenchmarkDecodeV2Message is a V2 request message (a batch of 8 rows of 6 features)
// decoded by DecodeMessage and by the general path alone, in one run:
//
//	go test -run=NONE -bench=DecodeV2Message ./internal/lane/
func BenchmarkDecodeV2Message(b *testing.B) {
	body := []byte(`{"id":"r1","inputs":[{"name":"features","datatype":"FP32","shape":[8,6],"data":[` +
		`0.5,-1,0.3,1,0,0.2,0.51,-1.1,0.31,1.2,0,0.25,0.5,-1,0.3,1,0,0.2,0.51,-1.1,0.31,1.2,0,0.25,` +
		`0.5,-1,0.3,1,0,0.2,0.51,-1.1,0.31,1.2,0,0.25,0.5,-1,0.3,1,0,0.2,0.51,-1.1,0.31,1.2,0,0.25]}]}`)
	limits := core.DefaultLimits()
	var general float64
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if req, _, err := decodeGeneric(body, limits); err != nil || req == nil {
				b.Fatal(err)
			}
		}
		general = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("DecodeMessage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if req, _, err := DecodeMessage(body, limits); err != nil || req == nil {
				b.Fatal(err)
			}
		}
		if general > 0 {
			b.ReportMetric(general/(float64(b.Elapsed())/float64(b.N)), "x_general")
		}
	})
}
