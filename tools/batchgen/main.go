// Command batchgen writes a tabular file for the example "tabular" model, for batch jobs:
//
//	go run ./tools/batchgen -rows 5000000 -o big.parquet
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ferryml/ferry/internal/batch/batchgen"
)

func main() {
	var o batchgen.Options
	out := flag.String("o", "", "file to write: .parquet, .csv or .jsonl")
	flag.IntVar(&o.Rows, "rows", 1000000, "rows to write")
	flag.IntVar(&o.RowGroupRows, "row-group", 65536, "Parquet rows per row group")
	flag.Uint64Var(&o.Seed, "seed", 1, "the same seed writes the same rows")
	flag.IntVar(&o.Vector, "vector", 0, "write an id and an \"input\" list of this many numbers per row instead (Parquet or JSON lines; 256 for the mlp model)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "batchgen: -o is required")
		os.Exit(2)
	}
	if err := batchgen.Write(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, "batchgen:", err)
		os.Exit(1)
	}
}
