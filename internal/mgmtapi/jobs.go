package mgmtapi

import "time"

// JobSpec is a server-side batch job (POST /api/v1/jobs): score Input with Model into
// Output, as `ferry batch` does in its own process. Local paths are read and written
// under the server's --jobs-dir only; s3:// URIs go to the server's configured store.
type JobSpec struct {
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
	Input   string `json:"input"`
	Output  string `json:"output"`
	// Rejects is where rows that fail go, one JSON line each ("" -> Output + ".rejects.jsonl").
	Rejects   string              `json:"rejects,omitempty"`
	IDColumns []string            `json:"id_columns,omitempty"`
	Mapping   map[string][]string `json:"mapping,omitempty"` // input -> columns
	// Shard "I/N" scores the I-th of N disjoint parts of Input.
	Shard       string `json:"shard,omitempty"`
	ChunkRows   int    `json:"chunk_rows,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
}

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Job is a job's status (GET /api/v1/jobs[/{id}]).
type Job struct {
	ID       string      `json:"id"`
	Spec     JobSpec     `json:"spec"`
	State    string      `json:"state"`
	Progress JobProgress `json:"progress"`
	Error    string      `json:"error,omitempty"`
	Created  time.Time   `json:"created"`
	Started  *time.Time  `json:"started,omitempty"`
	Finished *time.Time  `json:"finished,omitempty"`
}

// JobProgress counts a job's rows. Total is -1 until the input's size is known;
// RowsPerSecond and ETASeconds are over the running time so far (ETA -1: unknown).
type JobProgress struct {
	Rows          int64   `json:"rows"`
	Rejected      int64   `json:"rejected"`
	Total         int64   `json:"total"`
	RowsPerSecond float64 `json:"rows_per_second"`
	ETASeconds    float64 `json:"eta_seconds"`
	Resumed       bool    `json:"resumed,omitempty"`
}

// Done reports whether the job has ended, one way or another.
func (j Job) Done() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCancelled
}
