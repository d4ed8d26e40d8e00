package v2http

import (
	"bytes"
	"encoding/json"
	"github.com/ferryml/ferry/internal/modelconfig"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
)

func TestConfigJSONPrintsInt64AsNumbers(t *testing.T) {
	cfg := &inference.ModelConfig{
		Name:         "m",
		MaxBatchSize: 0,
		VersionPolicy: &inference.ModelVersionPolicy{PolicyChoice: &inference.ModelVersionPolicy_Specific_{
			Specific: &inference.ModelVersionPolicy_Specific{Versions: []int64{1, 9007199254740993}},
		}},
		Input: []*inference.ModelInput{{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{-1, 3}}},
		SchedulingChoice: &inference.ModelConfig_DynamicBatching{DynamicBatching: &inference.ModelDynamicBatching{
			PreferredBatchSize:        []int32{4},
			MaxQueueDelayMicroseconds: 100,
			PriorityQueuePolicy: map[uint64]*inference.ModelQueuePolicy{
				2: {DefaultTimeoutMicroseconds: 18446744073709551615},
			},
		}},
	}
	b, err := modelconfig.MarshalJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"max_batch_size":0`,
		`"dims":[-1,3]`,
		`"versions":[1,9007199254740993]`,
		`"max_queue_delay_microseconds":100`,
		`"priority_queue_policy":{"2":{`,
		`"default_timeout_microseconds":18446744073709551615`,
		`"data_type":"TYPE_FP32"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("MarshalJSON lacks %s:\n%s", want, b)
		}
	}
	// No 64-bit integer may stay quoted: decode and look for numeric strings where
	// numbers belong.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("MarshalJSON is not JSON: %v\n%s", err, b)
	}
	if dims := v["input"].([]any)[0].(map[string]any)["dims"].([]any); dims[0] != json.Number("-1") {
		t.Errorf("dims[0] = %#v, want the number -1", dims[0])
	}
}
