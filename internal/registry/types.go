package registry

import (
	"context"
	"time"
)

// RegisteredModel is a named model; its versions carry the artifacts.
type RegisteredModel struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
}

// Stage is a version's lifecycle stage (MLflow's names).
type Stage string

// The stages a version moves through; every version starts in StageNone.
const (
	StageNone       Stage = "None"
	StageStaging    Stage = "Staging"
	StageProduction Stage = "Production"
	StageArchived   Stage = "Archived"
)

func (s Stage) valid() bool {
	switch s {
	case StageNone, StageStaging, StageProduction, StageArchived:
		return true
	}
	return false
}

// TensorSpec describes one input or output of a version's signature.
type TensorSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Signature is what a version takes and returns.
type Signature struct {
	Inputs  []TensorSpec `json:"inputs,omitempty"`
	Outputs []TensorSpec `json:"outputs,omitempty"`
}

// Lineage says where a version came from.
type Lineage struct {
	RunID         string `json:"run_id,omitempty"`
	DatasetURI    string `json:"dataset_uri,omitempty"`
	DatasetHash   string `json:"dataset_hash,omitempty"`
	ParentVersion int64  `json:"parent_version,omitempty"`
}

// ModelVersion is one immutable artifact of a model, numbered 1, 2, 3... per
// model. Only Stage changes after creation (through TransitionStage).
type ModelVersion struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Source is the artifact location: a local folder (a repository version
	// folder or a managed-store path) or an s3:// URI.
	Source string `json:"source"`
	// Digest is the SHA-256 (hex) of the artifact; see DigestDir for folders.
	Digest    string             `json:"digest"`
	Backend   string             `json:"backend,omitempty"`
	Signature Signature          `json:"signature"`
	Tags      map[string]string  `json:"tags,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	Params    map[string]string  `json:"params,omitempty"`
	Lineage   Lineage            `json:"lineage"`
	Stage     Stage              `json:"stage"`
	CreatedBy string             `json:"created_by"`
	Created   time.Time          `json:"created"`
}

// StageChange is one row of a version's stage history.
type StageChange struct {
	Model   string    `json:"model"`
	Version int64     `json:"version"`
	From    Stage     `json:"from"`
	To      Stage     `json:"to"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// AuditEntry is one change to the registry: who did what to which object, when
// and (Detail, JSON) with which values and why.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Object string    `json:"object"`
	Detail []byte    `json:"detail"`
}

// AuditFilter selects audit rows; zero fields match everything. Rows come
// oldest first; Limit > 0 keeps the newest Limit of them.
type AuditFilter struct {
	Object string // exact object, e.g. "model/mlp" or "model/mlp/version/2"
	Action string // exact action, e.g. "version.create"
	Actor  string
	Since  time.Time
	Limit  int
}

type actorKey struct{}

type actor struct{ who, why string }

// WithActor returns a context whose registry changes are recorded as made by
// who, for the reason why (both land in the audit trail and stage history).
func WithActor(ctx context.Context, who, why string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor{who: who, why: why})
}

// UnknownActor is recorded when a change's context carries no WithActor.
const UnknownActor = "unknown"

func actorOf(ctx context.Context) (who, why string) {
	a, _ := ctx.Value(actorKey{}).(actor)
	if a.who == "" {
		a.who = UnknownActor
	}
	return a.who, a.why
}
