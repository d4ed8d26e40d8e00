package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
)

func withJobsDir(dir string) serverOption { return func(c *serveConfig) { c.lanes.jobsDir = dir } }

// waitJob polls a job until it ends.
func waitJob(t *testing.T, c *mgmtclient.Client, id string) mgmtapi.Job {
	t.Helper()
	var j mgmtapi.Job
	waitFor(t, func() bool {
		var err error
		if j, err = c.Job(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return j.Done()
	})
	return j
}

// TestServerJobs: a job submitted to a running server scores its file as online requests
// would, reports its progress, can be cancelled and resumed by submitting it again, and
// may not reach files outside --jobs-dir.
func TestServerJobs(t *testing.T) {
	repo, _ := batchSetup(t)
	dir := t.TempDir()
	const rows = 20000
	if err := batchgen.Write(filepath.Join(dir, "in.parquet"), batchgen.Options{Rows: rows, Seed: 23, RowGroupRows: 2000}); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, repo, onlyTabular, withJobsDir(dir))
	c, err := mgmtclient.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := mgmtapi.JobSpec{Model: "tabular", Input: "in.parquet", Output: "out/scores.parquet", IDColumns: []string{"id"},
		Mapping: tabularMapping, ChunkRows: 1000}
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	j, err := c.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, c, j.ID)
	if j.State != mgmtapi.JobSucceeded || j.Progress.Rows != rows || j.Progress.Total != rows || j.Progress.RowsPerSecond <= 0 {
		t.Fatalf("job %+v", j)
	}
	got := readScores(t, filepath.Join(dir, "out", "scores.parquet"))
	if len(got) != rows {
		t.Fatalf("%d rows in the output, want %d", len(got), rows)
	}
	checkOnline(t, repo, 23, rows, got)

	// Cancelled mid-job, then submitted again: it resumes and ends with every row once.
	spec.Output, spec.ChunkRows = "out/again.parquet", 200
	j, err = c.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		j, _ = c.Job(ctx, j.ID)
		return j.Progress.Rows > 0 || j.Done()
	})
	if j, err = c.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, c, j.ID); j.State != mgmtapi.JobCancelled && j.State != mgmtapi.JobSucceeded {
		t.Fatalf("cancelled job: %+v", j)
	}
	j, err = c.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, c, j.ID); j.State != mgmtapi.JobSucceeded {
		t.Fatalf("resumed job: %+v", j)
	}
	if again := readScores(t, filepath.Join(dir, "out", "again.parquet")); len(again) != rows {
		t.Fatalf("resumed output holds %d rows, want %d", len(again), rows)
	}
	if l, err := c.Jobs(ctx, mgmtapi.JobSucceeded); err != nil || len(l) != 2 {
		t.Fatalf("succeeded jobs: %d, %v", len(l), err)
	}

	// A failure at start is the job's error; paths outside the folder are refused.
	bad := spec
	bad.Output, bad.Mapping = "out/bad.parquet", map[string][]string{"features": {"age"}}
	if j, err = c.SubmitJob(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, c, j.ID); j.State != mgmtapi.JobFailed || !strings.Contains(j.Error, "features") {
		t.Fatalf("bad mapping: %+v", j)
	}
	os.Symlink("/etc", filepath.Join(dir, "etc"))
	for _, s := range []mgmtapi.JobSpec{{Model: "tabular", Input: "/etc/passwd", Output: "x.parquet"}, {Model: "tabular", Input: "in.parquet", Output: "../x.parquet"},
		{Model: "tabular", Input: "etc/passwd", Output: "x.parquet"}, {Model: "tabular", Input: "http://example.com/x.csv", Output: "x.parquet"}, {Input: "in.parquet", Output: "x.parquet"},
		{Model: "tabular", Input: "in.parquet", Output: "x.parquet", Shard: "4/4"}} {
		if _, err := c.SubmitJob(ctx, s); mgmtclient.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("SubmitJob(%+v) = %v, want a 400", s, err)
		}
	}
	if _, err := c.Job(ctx, "nope"); mgmtclient.StatusOf(err) != http.StatusNotFound {
		t.Errorf("unknown job: %v", err)
	}
}

// TestJobsNeedJobsDir: a server started without --jobs-dir says how to enable jobs.
func TestJobsNeedJobsDir(t *testing.T) {
	repo, _ := batchSetup(t)
	ts := startServer(t, repo, onlyTabular, withDataDir(t.TempDir())) // the management API without jobs
	c, _ := mgmtclient.New(ts.URL, nil)
	_, err := c.Jobs(context.Background(), "")
	if mgmtclient.StatusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "--jobs-dir") {
		t.Fatalf("jobs without --jobs-dir: %v", err)
	}
}
