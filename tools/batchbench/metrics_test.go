package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBatchCountsSumsVersionsAndSubtracts(t *testing.T) {
	const before = `# HELP ferry_batch_queue_delay_seconds How long each dynamic batch's oldest request waited.
# TYPE ferry_batch_queue_delay_seconds histogram
ferry_batch_queue_delay_seconds_bucket{model="mlp_adaptive5",reason="idle",version="1",le="2.5e-05"} 3
ferry_batch_queue_delay_seconds_count{model="mlp_adaptive5",reason="idle",version="1"} 10
ferry_batch_queue_delay_seconds_count{model="mlp_fixed5",reason="delay",version="1"} 4
`
	const after = before + `ferry_batch_queue_delay_seconds_count{model="mlp_adaptive5",reason="idle",version="2"} 5
ferry_batch_queue_delay_seconds_count{model="mlp_adaptive5",reason="full",version="1"} 2 1700000000000
ferry_batch_size_count{model="mlp_adaptive5",version="1"} 99
`
	b, err := parseBatchCounts(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseBatchCounts(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	want := batchCounts{"mlp_adaptive5": {"idle": 5, "full": 2}, "mlp_fixed5": {"delay": 0}}
	if d := cmp.Diff(want, a.minus(b)); d != "" {
		t.Errorf("after.minus(before) (-want +got):\n%s", d)
	}
}

func TestParseBatchCountsRefusesABadValue(t *testing.T) {
	_, err := parseBatchCounts(strings.NewReader(`ferry_batch_queue_delay_seconds_count{model="m",reason="idle"} x` + "\n"))
	if err == nil || !strings.Contains(err.Error(), "bad value") {
		t.Errorf("err = %v, want a bad value", err)
	}
}

func TestListeningAddrs(t *testing.T) {
	log := `{"time":"t","level":"INFO","msg":"loading","model":"mlp_none"}
not json
{"time":"t","level":"INFO","msg":"listening","http":"127.0.0.1:43211","grpc":"127.0.0.1:38521","metrics":""}
`
	h, g := listeningAddrs([]byte(log))
	if h != "127.0.0.1:43211" || g != "127.0.0.1:38521" {
		t.Errorf("listeningAddrs = %q, %q; want 127.0.0.1:43211, 127.0.0.1:38521", h, g)
	}
	if h, g := listeningAddrs([]byte(`{"msg":"loading"}`)); h != "" || g != "" {
		t.Errorf("listeningAddrs before listening = %q, %q; want none", h, g)
	}
}
