// Package batch scores a table in a file (Parquet, CSV or JSON lines, local or s3://)
// through core: rows stream in chunks, each chunk is scored, written as a part file
// and committed with a checkpoint, so a job killed at any point continues from its
// last committed chunk and the final output holds every row exactly once. A job may
// score one shard of its input, so that many machines share one file with no
// coordinator. A job is a client of core through lane.Core only.
package batch
