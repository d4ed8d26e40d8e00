package batchgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Row is one generated row; its columns fill the tabular model's "features" input.
type Row struct {
	ID           string  `parquet:"id"`
	Age          int64   `parquet:"age"`
	Income       float64 `parquet:"income"`
	DebtRatio    float64 `parquet:"debt_ratio"`
	Tenure       int32   `parquet:"tenure"`
	LatePayments int64   `parquet:"late_payments"`
	Utilization  float32 `parquet:"utilization"`
}

// Features are the columns that fill the tabular model's input, in order.
var Features = []string{"age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}

// Options shape a generated file.
type Options struct {
	Rows         int
	RowGroupRows int    // Parquet rows per row group (0: 65536)
	Seed         uint64 // the same seed writes the same rows
	// Vector, when > 0, writes VectorRows instead (Parquet or JSON lines): an id and an
	// "input" list of Vector numbers, as the example "mlp" model reads (Vector 256).
	Vector int
}

// VectorRow is one row of a vector file.
type VectorRow struct {
	ID    string    `parquet:"id"`
	Input []float32 `parquet:"input,list"`
}

// VectorAt is row i of a vector file made with seed.
func VectorAt(seed uint64, i, n int) VectorRow {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	v := make([]float32, n)
	for k := range v {
		v[k] = r.Float32()*2 - 1
	}
	return VectorRow{ID: "r" + strconv.Itoa(i), Input: v}
}

// RowAt is row i of a file made with seed: standardized values, as the model was
// trained on (0 the mean, 1 a standard deviation), some of them whole numbers so that
// integer columns are read too.
func RowAt(seed uint64, i int) Row {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	return Row{ID: "r" + strconv.Itoa(i), Age: r.Int64N(5) - 2, Income: r.NormFloat64(), DebtRatio: r.NormFloat64(),
		Tenure: int32(r.IntN(5) - 2), LatePayments: r.Int64N(4), Utilization: float32(r.NormFloat64())}
}

// Write writes a file; the format is the path's extension (.parquet, .csv, .jsonl).
func Write(path string, o Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case o.Vector > 0 && ext == ".parquet":
		err = writeRows(f, o, func(i int) VectorRow { return VectorAt(o.Seed, i, o.Vector) })
	case o.Vector > 0 && (ext == ".jsonl" || ext == ".ndjson"):
		err = writeVectorLines(f, o)
	case o.Vector > 0:
		err = fmt.Errorf("%s: vector files are Parquet or JSON lines", path)
	case ext == ".parquet":
		err = writeRows(f, o, func(i int) Row { return RowAt(o.Seed, i) })
	case ext == ".csv" || ext == ".jsonl" || ext == ".ndjson":
		err = writeText(f, o, filepath.Ext(path) == ".csv")
	default:
		err = fmt.Errorf("%s: want .parquet, .csv or .jsonl", path)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeRows[T any](w io.Writer, o Options, at func(int) T) error {
	group := o.RowGroupRows
	if group <= 0 {
		group = 65536
	}
	pw := parquet.NewGenericWriter[T](w, parquet.MaxRowsPerRowGroup(int64(group)), parquet.Compression(&parquet.Snappy))
	buf := make([]T, 0, 4096)
	for i := range o.Rows {
		buf = append(buf, at(i))
		if len(buf) == cap(buf) || i == o.Rows-1 {
			if _, err := pw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if (i+1)%group == 0 {
			if err := pw.Flush(); err != nil {
				return err
			}
		}
	}
	return pw.Close()
}

func writeText(w io.Writer, o Options, csv bool) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if csv {
		bw.WriteString("id," + strings.Join(Features, ",") + "\n")
	}
	for i := range o.Rows {
		r := RowAt(o.Seed, i)
		if csv {
			fmt.Fprintf(bw, "%s,%d,%s,%s,%d,%d,%s\n", r.ID, r.Age, ftoa(r.Income), ftoa(r.DebtRatio), r.Tenure, r.LatePayments, ftoa32(r.Utilization))
		} else {
			fmt.Fprintf(bw, `{"id":%q,"age":%d,"income":%s,"debt_ratio":%s,"tenure":%d,"late_payments":%d,"utilization":%s}`+"\n",
				r.ID, r.Age, ftoa(r.Income), ftoa(r.DebtRatio), r.Tenure, r.LatePayments, ftoa32(r.Utilization))
		}
	}
	return bw.Flush()
}

// writeVectorLines writes VectorRows as JSON lines: {"id":"r0","input":[...]}.
func writeVectorLines(w io.Writer, o Options) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for i := range o.Rows {
		r := VectorAt(o.Seed, i, o.Vector)
		line = strconv.AppendQuote(append(line[:0], `{"id":`...), r.ID)
		line = append(line, `,"input":[`...)
		for k, v := range r.Input {
			if k > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendFloat(line, float64(v), 'g', -1, 32)
		}
		if _, err := bw.Write(append(line, "]}\n"...)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func ftoa(f float64) string   { return strconv.FormatFloat(f, 'g', -1, 64) }
func ftoa32(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }
