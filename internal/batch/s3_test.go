package batch_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/objstore/s3test"
)

// TestS3InputAndOutput: an s3:// input is read and s3:// output and rejects written,
// through an in-process S3 store; the scores equal a local run's.
func TestS3InputAndOutput(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "batchkey")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	srv := s3test.New(t, "data")
	srv.RequireAccessKey("batchkey")
	const rows = 1500
	local := gen(t, "in.parquet", batchgen.Options{Rows: rows, RowGroupRows: 500, Seed: 9})
	body, _ := os.ReadFile(local)
	srv.Put(t, "jobs/in.parquet", body)
	opts := batch.Options{Input: "s3://data/jobs/in.parquet", Output: "s3://data/jobs/out.csv", Model: "tabular", Mapping: features,
		IDColumns: []string{"id"}, ChunkRows: 400, S3: batch.S3Options{Endpoint: srv.URL, PathStyle: true}}
	p, err := batch.Run(context.Background(), testCore, opts)
	if err != nil || p.Rows != rows {
		t.Fatalf("%+v %v", p, err)
	}
	dir := t.TempDir()
	get := func(key string) string {
		cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
		if err != nil {
			t.Fatal(err)
		}
		c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		p := filepath.Join(dir, filepath.Base(key))
		os.WriteFile(p, b, 0o644)
		return p
	}
	got, _ := readOutput(t, get("jobs/out.csv"))
	if len(got) != rows {
		t.Fatalf("%d rows", len(got))
	}
	for _, i := range []int{0, 777, rows - 1} {
		if v := got[fmt.Sprint("r", i)]; !near(v[0].(float64), float64(online(t, 9, i))) {
			t.Fatalf("row %d: %v", i, v)
		}
	}
	if r := get("jobs/out.csv.rejects.jsonl"); len(rejects(t, r)) != 0 {
		t.Fatal("rejects")
	}
	// A missing object fails at start, naming it.
	opts.Input = "s3://data/jobs/none.parquet"
	if _, err := batch.Run(context.Background(), testCore, opts); err == nil || !strings.Contains(err.Error(), "none.parquet") {
		t.Fatalf("missing input: %v", err)
	}
}
