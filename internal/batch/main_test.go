package batch_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/lane/lanetest"
	"github.com/parquet-go/parquet-go"
)

var testCore *lanetest.Core

func TestMain(m *testing.M) {
	var err error
	testCore, err = lanetest.OpenExamples("tabular", "mlp")
	if err != nil {
		fmt.Fprintln(os.Stderr, "batch tests need the example models and ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	testCore.Close()
	os.Exit(code)
}

var features = lane.Mapping{"features": batchgen.Features}

// online scores one generated row alone, as an online request would.
func online(t testing.TB, seed uint64, i int) float32 {
	t.Helper()
	r := batchgen.RowAt(seed, i)
	return score(t, "tabular", lane.Row{"age": r.Age, "income": r.Income, "debt_ratio": r.DebtRatio, "tenure": r.Tenure,
		"late_payments": r.LatePayments, "utilization": r.Utilization})[0]
}

// readOutput reads a job's output: first column (the id) -> the other columns' values,
// as JSON would show them. A repeated id fails the test: every row must be there once.
func readOutput(t testing.TB, path string) (map[string][]any, []string) {
	t.Helper()
	var header []string
	rows := map[string][]any{}
	add := func(vals []any) {
		key := fmt.Sprint(vals[0])
		if _, dup := rows[key]; dup {
			t.Fatalf("%s: row %s twice", path, key)
		}
		rows[key] = vals[1:]
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch filepath.Ext(path) {
	case ".parquet":
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range pf.Schema().Fields() {
			header = append(header, fl.Name())
		}
		r := parquet.NewReader(pf)
		defer r.Close()
		buf := make([]parquet.Row, 100)
		for {
			n, err := r.ReadRows(buf)
			for _, row := range buf[:n] {
				vals := make([]any, len(header))
				for _, v := range row {
					c := v.Column()
					switch prev := vals[c].(type) {
					case nil:
						vals[c] = parquetAny(v)
					case []any: // a list's third and later elements
						vals[c] = append(prev, parquetAny(v))
					default:
						vals[c] = []any{prev, parquetAny(v)}
					}
				}
				add(vals)
			}
			if err != nil {
				break
			}
		}
	case ".csv":
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			cells := strings.Split(sc.Text(), ",")
			if header == nil {
				header = cells
				continue
			}
			vals := make([]any, len(cells))
			for i, c := range cells {
				vals[i] = c
				if x, err := strconv.ParseFloat(c, 64); err == nil && i > 0 {
					vals[i] = x
				}
			}
			add(vals)
		}
	default:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			// Keys in file order: the writer puts ids first.
			keys := jsonKeys(t, sc.Text())
			if header == nil {
				header = keys
			}
			vals := make([]any, len(keys))
			for i, k := range keys {
				vals[i] = obj[k]
			}
			add(vals)
		}
	}
	return rows, header
}

func jsonKeys(t testing.TB, line string) []string {
	dec := json.NewDecoder(strings.NewReader(line))
	var keys []string
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	return keys
}

func parquetAny(v parquet.Value) any {
	switch v.Kind() {
	case parquet.Float:
		return float64(v.Float())
	case parquet.Double:
		return v.Double()
	case parquet.Int64:
		return v.Int64()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.ByteArray:
		return string(v.ByteArray())
	}
	return v.String()
}

// rejects reads a rejects file's lines.
func rejects(t testing.TB, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("rejects line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b)) }

func gen(t testing.TB, name string, o batchgen.Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := batchgen.Write(p, o); err != nil {
		t.Fatal(err)
	}
	return p
}
