// Package batchgen writes tabular files for the example "tabular" model (the columns of
// lane's tabular mapping and an id), as Parquet, CSV or JSON lines: inputs for batch
// jobs' tests, benchmarks and tools/batchgen.
package batchgen
