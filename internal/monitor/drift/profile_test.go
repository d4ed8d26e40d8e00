package drift

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
)

const irisCSV = `sepal_length,species,petal
5.1,setosa,1
4.9,setosa,1
6.3,virginica,2
5.8,virginica,
NaN,versicolor,3
`

func TestProfileFromCSV(t *testing.T) {
	p, err := ProfileFromCSV(strings.NewReader(irisCSV), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 5 {
		t.Errorf("rows = %d, want 5", p.Rows)
	}
	sl := p.Features["sepal_length"]
	if sl.Kind != Numeric || sl.N != 4 || sl.Invalid != 1 || sl.NUnique != 4 || !sl.Discrete || sl.Min != 4.9 || sl.Max != 6.3 {
		t.Errorf("sepal_length = %+v, want numeric n 4, invalid 1 (NaN), 4 unique, discrete, min 4.9, max 6.3", sl)
	}
	if got, want := sl.Counts, []int64{0, 1, 1, 1, 1, 0}; !cmp.Equal(got, want) {
		t.Errorf("sepal_length counts = %v, want %v (one bin per value, empty tails)", got, want)
	}
	sp := p.Features["species"]
	if diff := cmp.Diff(map[string]int64{"setosa": 2, "virginica": 2, "versicolor": 1}, sp.Categories); diff != "" || sp.Kind != Categorical || sp.NUnique != 3 {
		t.Errorf("species: kind %s, n_unique %d, categories (-want +got):\n%s", sp.Kind, sp.NUnique, diff)
	}
	if pe := p.Features["petal"]; pe.Invalid != 1 || pe.N != 4 {
		t.Errorf("petal: n %d invalid %d, want 4 and 1 (the empty cell)", pe.N, pe.Invalid)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	p, err = ProfileFromCSV(strings.NewReader(irisCSV), ProfileOptions{Categorical: map[string]bool{"petal": true}})
	if err != nil || p.Features["petal"].Kind != Categorical || p.Features["petal"].Categories["3"] != 1 {
		t.Errorf("petal declared categorical: %+v, %v", p.Features["petal"], err)
	}
}

func TestProfileFromCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, csv, want string }{
		{"empty file", "", "baseline CSV: empty file"},
		{"header only", "a,b\n", "baseline CSV: no rows"},
		{"ragged row", "a,b\n1,2\n3\n", "record on line 3: wrong number of fields"},
		{"text in a numeric column", "a,b\n1,x\n2,y\nhello,z\n", `baseline CSV: row 4, column "a": "hello" is not a number`},
		{"repeated column", "a,a\n1,2\n", `header column 2: name "a" is empty or repeated`},
		{"unterminated quote", "a\n\"1\n", "extraneous or missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ProfileFromCSV(strings.NewReader(tc.csv), ProfileOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ProfileFromCSV(%q) err = %v, want it to contain %q", tc.csv, err, tc.want)
			}
		})
	}
}

func TestProfileFromJSONL(t *testing.T) {
	in := `{"x": [1.5, 2, 3], "label": "cat", "score": 0.5}
{"x": [2.5, null, 4], "label": "dog", "score": null}

{"x": [3.5, 2, 5], "label": "cat", "score": 0.7}
`
	p, err := ProfileFromJSONL(strings.NewReader(in), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := p.Names()
	if want := []string{"label", "score", "x[0]", "x[1]", "x[2]"}; !cmp.Equal(names, want) {
		t.Errorf("features = %v, want %v (arrays are tensor rows)", names, want)
	}
	if f := p.Features["x[1]"]; f.N != 2 || f.Invalid != 1 {
		t.Errorf("x[1]: n %d invalid %d, want 2 and 1", f.N, f.Invalid)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not an object", "[1,2]\n", "baseline JSONL: line 1: want a JSON object"},
		{"string in numeric", "{\"a\":1}\n{\"a\":\"x\"}\n", `line 2, feature "a": string "x" in a numeric feature`},
		{"bool", "{\"a\":true}\n", `line 1, feature "a": true is not a number, string or null`},
		{"empty", "\n\n", "baseline JSONL: no rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ProfileFromJSONL(strings.NewReader(tc.in), ProfileOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ProfileFromJSONL(%q) err = %v, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

type parquetRow struct {
	X     []float32 `parquet:"x,list"`
	Label string    `parquet:"label"`
	Score float64   `parquet:"score"`
}

// The same data as CSV and as Parquet give the same profile.
func TestProfileFromParquetMatchesCSV(t *testing.T) {
	var rows []parquetRow
	var csv strings.Builder
	csv.WriteString("x[0],x[1],label,score\n")
	for i := range 300 {
		r := parquetRow{X: []float32{float32(i % 37), float32(i) / 4}, Label: []string{"a", "b", "c"}[i%3], Score: math.Sin(float64(i))}
		rows = append(rows, r)
		csv.WriteString(strings.Join([]string{ftoa(float64(r.X[0])), ftoa(float64(r.X[1])), r.Label, ftoa(r.Score)}, ",") + "\n")
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[parquetRow](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ProfileFromParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ProfileFromCSV(strings.NewReader(csv.String()), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parquet profile differs from the CSV one (-csv +parquet):\n%s", diff)
	}
	if _, err := ProfileFromParquet(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), int64(buf.Len()/2), ProfileOptions{}); err == nil {
		t.Error("truncated Parquet: want an error")
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// A profile survives its own JSON, and LoadBaseline reads every format by extension.
func TestProfileJSONRoundTripAndLoad(t *testing.T) {
	p, err := ProfileFromCSV(strings.NewReader(irisCSV), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, _ := json.Marshal(p)
	path := filepath.Join(dir, "base.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadBaseline(BaselineSource{Path: path}, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("profile JSON round trip (-want +got):\n%s", diff)
	}
	csvPath := filepath.Join(dir, "base.csv")
	os.WriteFile(csvPath, []byte(irisCSV), 0o600)
	if got, err := LoadBaseline(BaselineSource{Path: csvPath}, ProfileOptions{}); err != nil || !cmp.Equal(p, got) {
		t.Errorf("LoadBaseline(csv) = %v, %v", got, err)
	}
	for _, bad := range []string{
		`{"rows":1,"features":{"a":{"kind":"numeric","n":1,"edges":[2,1],"counts":[0,1,0],"sums":[0,1,0]}}}`,
		`{"rows":1,"features":{"a":{"kind":"numeric","n":5,"edges":[1,2],"counts":[0,1,0],"sums":[0,1,0]}}}`,
		`{"rows":1,"features":{"a":{"kind":"text","n":0}}}`,
		`{"rows":1,"features":{}}`,
		`{"rows":1,"features":{"a":null}}`,
		`{"rows":1,"extra":2}`,
	} {
		if _, err := ReadProfile(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadProfile(%s): want an error", bad)
		}
	}
}

// The lookup grid agrees with a binary search on every kind of edge layout.
func TestBinnerMatchesSearch(t *testing.T) {
	layouts := [][]float64{
		{1, 1}, {0, 1}, {0, 0.5, 1}, {-1e308, 0, 1e308},
		{-3, -1, -0.999, -0.998, -0.997, -0.996, -0.995, -0.994, -0.993, -0.992, -0.991, -0.99, 0, 5, 1e6},
	}
	var q []float64
	for i := range 300 {
		q = append(q, math.Pow(float64(i)/10, 3)) // dense near 0, sparse above
	}
	layouts = append(layouts, quantileEdges(q))
	for _, edges := range layouts {
		b := newBinner(edges)
		probe := append([]float64{-1e9, 1e9, math.Nextafter(edges[0], -2e9), math.Nextafter(edges[len(edges)-1], 2e9)}, edges...)
		for i := range 2000 {
			probe = append(probe, edges[0]+(edges[len(edges)-1]-edges[0])*float64(i)/1999)
		}
		for _, e := range edges { // either side of every edge: where rounding of the cell index bites
			probe = append(probe, math.Nextafter(e, math.Inf(-1)), math.Nextafter(e, math.Inf(1)))
		}
		for _, v := range probe {
			if got, want := b.slot(v), slotBySearch(edges, v); got != want {
				t.Fatalf("edges %v: slot(%v) = %d, want %d", edges, v, got, want)
			}
		}
	}
}

func slotBySearch(edges []float64, v float64) int {
	nb := len(edges) - 1
	switch {
	case v < edges[0]:
		return 0
	case v > edges[nb]:
		return nb + 1
	case v == edges[nb]:
		return nb
	}
	return sort.Search(len(edges), func(i int) bool { return edges[i] > v })
}
