package modelconfig

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestMarshalJSONGolden prints each good config, defaults applied, and
// compares it (indented for reading) with testdata/<name>.json.golden.
func TestMarshalJSONGolden(t *testing.T) {
	for name, text := range loadDir(t, "good", ".pbtxt") {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			SetDefaults(cfg, name)
			got, err := MarshalJSON(cfg)
			if err != nil {
				t.Fatalf("MarshalJSON(%s) err = %v", name, err)
			}
			if !json.Valid(got) {
				t.Fatalf("MarshalJSON(%s) printed invalid JSON: %s", name, got)
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			indented.WriteByte('\n')
			golden := filepath.Join("testdata", name+".json.golden")
			if *update {
				if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), indented.String()); diff != "" {
				t.Errorf("MarshalJSON(%s) differs from %s (-want +got):\n%s", name, golden, diff)
			}

			back, err := ParseJSON(got)
			if err != nil {
				t.Fatalf("ParseJSON(MarshalJSON(%s)) err = %v", name, err)
			}
			if diff := cmp.Diff(cfg, back, protocmp.Transform()); diff != "" {
				t.Errorf("JSON round trip of %s changed the config (-before +after):\n%s", name, diff)
			}
		})
	}
}

// Triton's clients read dims and other int64 fields as JSON numbers; Go's
// protojson would print strings.
func TestMarshalJSONPrintsInt64AsNumbers(t *testing.T) {
	cfg, err := Parse([]byte(`
		name: "m"
		input [ { name: "x" data_type: TYPE_FP32 dims: [ -1, 9007199254740993 ] } ]
		dynamic_batching { max_queue_delay_microseconds: 18446744073709551615 priority_queue_policy { key: 3 value { } } }
		version_policy { specific { versions: [ 2 ] } }`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"dims":[-1,9007199254740993]`,
		`"max_queue_delay_microseconds":18446744073709551615`,
		`"versions":[2]`,
		`"priority_queue_policy":{"3":{"timeout_action":"REJECT","default_timeout_microseconds":0,`,
		`"data_type":"TYPE_FP32"`,
		`"max_batch_size":0`,
		`"output":[]`,
		`"parameters":{}`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("MarshalJSON = %s\nwant it to contain %s", got, want)
		}
	}
	for _, absent := range []string{`"sequence_batching"`, `"optimization"`, `"9007199254740993"`} {
		if strings.Contains(string(got), absent) {
			t.Errorf("MarshalJSON = %s\nwant no %s", got, absent)
		}
	}
	back, err := ParseJSON(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, back, protocmp.Transform()); diff != "" {
		t.Errorf("round trip (-before +after):\n%s", diff)
	}
}

func TestMarshalJSONSpecialValues(t *testing.T) {
	cfg := &inference.ModelConfig{
		Name: `quote " back\slash <tag> & é`,
		SchedulingChoice: &inference.ModelConfig_SequenceBatching{SequenceBatching: &inference.ModelSequenceBatching{
			ControlInput: []*inference.ModelSequenceBatching_ControlInput{{
				Name:    "s",
				Control: []*inference.ModelSequenceBatching_Control{{Fp32FalseTrue: []float32{float32(math.Inf(-1)), 0.1, 1e-7}}},
			}},
		}},
		Input: []*inference.ModelInput{{DataType: inference.DataType(42)}},
	}
	got, err := MarshalJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"name":"quote \" back\\slash <tag> & é"`,
		`"fp32_false_true":["-Infinity",0.1,1e-7]`,
		`"data_type":42`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("MarshalJSON = %s\nwant it to contain %s", got, want)
		}
	}
	if _, err := ParseJSON(got); err != nil {
		t.Errorf("ParseJSON(%s) err = %v", got, err)
	}
}
