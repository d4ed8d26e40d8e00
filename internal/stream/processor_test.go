package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryml/ferry/internal/lane/lanetest"
	"github.com/ferryml/ferry/internal/stream"
)

var testCore *lanetest.Core

func TestMain(m *testing.M) {
	var err error
	testCore, err = lanetest.OpenExamples("tabular")
	if err != nil {
		fmt.Fprintln(os.Stderr, "stream tests need the example models and ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	testCore.Close()
	os.Exit(code)
}

var features = lanetest.TabularMapping

func row(id int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"age":%g,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`, id, float64(id)/10)
}

// TestProcessKeepsOrderAndSortsFailures: rows and V2 requests score in one call, results
// come back in message order, and poison messages say why.
func TestProcessKeepsOrderAndSortsFailures(t *testing.T) {
	ctx := context.Background()
	p, err := stream.NewProcessor(ctx, testCore, stream.Options{Model: "tabular", Mapping: features})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []stream.Message
	for i := range 600 { // more than one batch of 256
		msgs = append(msgs, stream.Message{Value: row(i)})
	}
	msgs = append(msgs,
		stream.Message{Value: []byte(`not json`)},
		stream.Message{Value: []byte(`{"id":1,"age":"old"}`)},
		stream.Message{Value: []byte(`{"id":"v2","inputs":[{"name":"features","datatype":"FP32","shape":[1,6],"data":[0,0.1,0.2,0.3,1,0.5]}]}`)},
	)
	res := p.Process(ctx, msgs)
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	for i := range 600 {
		var out map[string]any
		if res[i].Err != nil || json.Unmarshal(res[i].Value, &out) != nil {
			t.Fatalf("message %d: %v %s", i, res[i].Err, res[i].Value)
		}
		if out["id"] != float64(i) || out["score"] == nil || out["age"] != nil {
			t.Fatalf("message %d: output row %s, want its id, its score and no feature", i, res[i].Value)
		}
	}
	if res[600].Err == nil || res[601].Err == nil || !strings.Contains(res[601].Err.Error(), `"age"`) || res[600].Retry || res[601].Retry {
		t.Errorf("poison messages: %+v / %+v", res[600], res[601])
	}
	if res[602].Err != nil || !strings.Contains(string(res[602].Value), `"model_name":"tabular"`) {
		t.Errorf("V2 message: %v %s", res[602].Err, res[602].Value)
	}
	// The V2 request's score equals the same row's.
	var v2 struct{ Outputs []struct{ Data []float64 } }
	var r0 map[string]float64
	json.Unmarshal(res[602].Value, &v2)
	json.Unmarshal(res[0].Value, &r0)
	if len(v2.Outputs) != 1 || float32(v2.Outputs[0].Data[0]) != float32(r0["score"]) {
		t.Errorf("V2 score %v, row score %v", v2.Outputs, r0["score"])
	}
}

func TestProcessRetriesWhenTheContextEnds(t *testing.T) {
	p, err := stream.NewProcessor(context.Background(), testCore, stream.Options{Model: "tabular", Mapping: features})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, r := range p.Process(ctx, []stream.Message{{Value: row(1)}}) {
		if !r.Retry {
			t.Errorf("result %d after cancel: %+v, want Retry", i, r)
		}
	}
}

func TestCollectorReportsEveryPartition(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stream.Collector(func() []stream.Stats {
		return []stream.Stats{{Broker: "kafka", Consumer: "c", Topic: "in", Partition: 2, Consumed: 5, Produced: 4, Failed: 1, Lag: 7},
			{Broker: "redis", Consumer: "r", Topic: "s", Lag: -1}}
	}))
	want := `# HELP ferry_stream_lag Messages in the input partition or stream the consumer group has not consumed yet.
# TYPE ferry_stream_lag gauge
ferry_stream_lag{broker="kafka",consumer="c",partition="2",topic="in"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ferry_stream_lag"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "ferry_stream_consumed_total"); err != nil || n != 2 {
		t.Fatalf("consumed series: %d, %v", n, err)
	}
}

// TestProcessPassesFieldsThrough: a row's output carries the fields the model does not
// read (or the listed ones), as written, beside the score, in encoding/json's order and
// spelling, whichever way the row was decoded (a duplicate field, null, a non-ASCII
// string, a nested value).
func TestProcessPassesFieldsThrough(t *testing.T) {
	ctx := context.Background()
	const model = `"age":1,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5`
	msgs := []stream.Message{
		{Value: []byte(`{"id":7,` + model + `,"zone":"eu","vip":true,"note":null}`)},
		{Value: []byte(`{"id":1,"id":2.50,` + model + `}`)},
		{Value: []byte(`{"id":"x<y",` + model + `,"zone":"é"}`)},
		{Value: []byte(`{"id":3,` + model + `,"tags":["a"]}`)},
		{Value: []byte(`{"id":4,` + model + `,"emb":[1, -2.5e3 ,0]}`)},
	}
	for _, tc := range []struct {
		pass []string
		want []map[string]string // each output's fields but the score, as JSON
	}{
		{nil, []map[string]string{
			{"id": "7", "zone": `"eu"`, "vip": "true", "note": "null"},
			{"id": "2.50"},
			{"id": `"x\u003cy"`, "zone": `"é"`},
			{"id": "3", "tags": `["a"]`},
			{"id": "4", "emb": "[1,-2.5e3,0]"},
		}},
		{[]string{"id", "age"}, []map[string]string{
			{"id": "7", "age": "1"}, {"id": "2.50", "age": "1"}, {"id": `"x\u003cy"`, "age": "1"}, {"id": "3", "age": "1"}, {"id": "4", "age": "1"},
		}},
	} {
		p, err := stream.NewProcessor(ctx, testCore, stream.Options{Model: "tabular", Mapping: features, Passthrough: tc.pass})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range p.Process(ctx, msgs) {
			if r.Err != nil {
				t.Fatalf("pass %v, message %d: %v", tc.pass, i, r.Err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(r.Value, &got); err != nil {
				t.Fatal(err)
			}
			if _, ok := got["score"]; !ok {
				t.Errorf("pass %v, message %d: no score in %s", tc.pass, i, r.Value)
			}
			delete(got, "score")
			if len(got) != len(tc.want[i]) {
				t.Errorf("pass %v, message %d: %s, want the fields %v and the score", tc.pass, i, r.Value, tc.want[i])
			}
			for f, v := range tc.want[i] {
				if string(got[f]) != v {
					t.Errorf("pass %v, message %d: %s = %s, want %s (in %s)", tc.pass, i, f, got[f], v, r.Value)
				}
			}
			// encoding/json writes the same object byte for byte: sorted keys, its escapes.
			var same map[string]json.RawMessage
			_ = json.Unmarshal(r.Value, &same)
			if want, _ := json.Marshal(same); string(want) != string(r.Value) {
				t.Errorf("pass %v, message %d: %s, encoding/json writes %s", tc.pass, i, r.Value, want)
			}
		}
	}
}

// A model input filled from one field holding a list of numbers (a feature vector)
// scores as the same numbers from one field each, whether the row takes the direct way
// (Builder.AddFlat) or the general one (an escape in another field), in one request.
func TestProcessTakesFeatureVectors(t *testing.T) {
	ctx := context.Background()
	mapped, err := stream.NewProcessor(ctx, testCore, stream.Options{Model: "tabular", Mapping: features})
	if err != nil {
		t.Fatal(err)
	}
	byName, err := stream.NewProcessor(ctx, testCore, stream.Options{Model: "tabular"}) // "features" fills features
	if err != nil {
		t.Fatal(err)
	}
	want := mapped.Process(ctx, []stream.Message{{Value: []byte(`{"id":1,"age":1,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`)}})[0]
	if want.Err != nil {
		t.Fatal(want.Err)
	}
	got := byName.Process(ctx, []stream.Message{
		{Value: []byte(`{"id":1,"features":[1,0.1,0.2,0.3,1,0.5]}`)},
		{Value: []byte(`{"id":1,"features":[ 1 , 0.1,0.2,0.3,1 ,0.5 ] }`)},
		{Value: []byte(`{"features":[1,0.1,0.2,0.3,1,0.5],"id":1}`)},
		{Value: []byte(`{"id":1,"features":[1,0.1,0.2,0.3,1,0.5],"n":"\u0041"}`)}, // the general way
		{Value: []byte(`{"id":1,"features":[1,2]}`)},
		{Value: []byte(`{"id":1,"features":[1,0.1,0.2,0.3,1,"x"]}`)},
	})
	for i, r := range got[:3] {
		if r.Err != nil || string(r.Value) != string(want.Value) {
			t.Errorf("message %d: %s (%v), want %s", i, r.Value, r.Err, want.Value)
		}
	}
	if r := got[3]; r.Err != nil || string(r.Value) != strings.Replace(string(want.Value), `,"score"`, `,"n":"A","score"`, 1) {
		t.Errorf("the general way: %s (%v), want %s with n", r.Value, r.Err, want.Value)
	}
	for i, r := range got[4:] {
		if r.Err == nil || !strings.Contains(r.Err.Error(), `field "features"`) {
			t.Errorf("bad vector %d: %s, %v; want an error naming the field", i, r.Value, r.Err)
		}
	}
}
