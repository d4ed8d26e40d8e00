// Command ortprof summarizes ONNX Runtime profiles: where a session's runs spent their
// time, by operator type (or by node with -nodes). ONNX Runtime writes a profile of
// every session a Ferry process opens while $FERRY_ORT_PROFILE names a file prefix
// (PREFIX_<date>.json, one per session), for example around a decode-step benchmark:
//
//	FERRY_ORT_PROFILE=/tmp/gpt FERRY_GPT_BENCH_DIR=/tmp/gptbench go test -run XXX -bench SharedKVDecodeStep -benchtime=10x ./tools/onnxgen
//	go run ./tools/ortprof /tmp/gpt_*.json
//
// For each file it prints the runs, their mean time, and the operators' time per run
// (kernel time, summed over the run's nodes), most first.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one entry of ONNX Runtime's profile (Chrome trace format).
type event struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Dur  int64  `json:"dur"` // µs
	Args struct {
		OpName string `json:"op_name"`
	} `json:"args"`
}

// row is one operator type's (or node's) total over a profile.
type row struct {
	key        string
	dur, nodes int64
}

// summary is a profile's runs and its rows, most time first.
type summary struct {
	runs    int
	runTime int64 // µs, all runs
	kernel  int64 // µs, all nodes
	rows    []row
}

func summarize(r io.Reader, byNode bool) (summary, error) {
	var evs []event
	if err := json.NewDecoder(r).Decode(&evs); err != nil {
		return summary{}, fmt.Errorf("not an ONNX Runtime profile: %w", err)
	}
	var s summary
	idx := map[string]int{}
	for _, e := range evs {
		switch {
		case e.Cat == "Session" && e.Name == "model_run":
			s.runs++
			s.runTime += e.Dur
		case e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time"):
			key := e.Args.OpName
			if byNode {
				key = strings.TrimSuffix(e.Name, "_kernel_time") + " (" + e.Args.OpName + ")"
			}
			i, ok := idx[key]
			if !ok {
				i = len(s.rows)
				idx[key] = i
				s.rows = append(s.rows, row{key: key})
			}
			s.rows[i].dur += e.Dur
			s.rows[i].nodes++
			s.kernel += e.Dur
		}
	}
	slices.SortStableFunc(s.rows, func(a, b row) int { return cmp.Compare(b.dur, a.dur) })
	return s, nil
}

func (s summary) print(w io.Writer, top int) {
	if s.runs == 0 {
		fmt.Fprintln(w, "  no runs")
		return
	}
	per := func(us int64) float64 { return float64(us) / 1000 / float64(s.runs) }
	fmt.Fprintf(w, "  %d runs, %.2f ms a run, of which kernels %.2f ms\n", s.runs, per(s.runTime), per(s.kernel))
	for i, r := range s.rows {
		if i == top {
			fmt.Fprintf(w, "  ... %d more\n", len(s.rows)-top)
			break
		}
		fmt.Fprintf(w, "  %-40s %8.2f ms a run  %5.1f%%  %5d nodes a run\n", r.key, per(r.dur), 100*float64(r.dur)/float64(s.kernel), r.nodes/int64(s.runs))
	}
}

func main() {
	byNode := flag.Bool("nodes", false, "group by node instead of operator type")
	top := flag.Int("top", 15, "rows to print per profile")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ortprof [-nodes] [-top N] PROFILE.json...")
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		fmt.Println(path)
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ortprof:", err)
			failed = true
			continue
		}
		s, err := summarize(f, *byNode)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "ortprof: %s: %v\n", path, err)
			failed = true
			continue
		}
		s.print(os.Stdout, *top)
	}
	if failed {
		os.Exit(1)
	}
}
