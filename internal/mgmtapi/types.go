package mgmtapi

import (
	"encoding/json"

	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

// Prefix is the path every management route lives under.
const Prefix = "/api/v1/"

// Headers a client sets to say who makes a change and why (the audit trail's actor
// and reason), and the push metadata header.
const (
	HeaderActor       = "X-Ferry-Actor"
	HeaderReason      = "X-Ferry-Reason"
	HeaderVersionMeta = "X-Ferry-Version-Meta"
)

// Content types of a push (POST /api/v1/models/{name}/versions).
const (
	ContentTar       = "application/x-tar"
	ContentMultipart = "multipart/form-data"
)

// Model is a registered model with its versions (oldest first) and aliases: one entry
// of GET /api/v1/models, and GET /api/v1/models/{name}.
type Model struct {
	registry.RegisteredModel
	Versions []registry.ModelVersion `json:"versions"`
	Aliases  map[string]int64        `json:"aliases"`
}

// NewModel is the body of POST /api/v1/models.
type NewModel struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// ModelPatch is the body of PATCH /api/v1/models/{name}: a field that is present
// replaces the stored one, an absent one is kept.
type ModelPatch struct {
	Description *string            `json:"description,omitempty"`
	Tags        *map[string]string `json:"tags,omitempty"`
}

// StageRequest is the body of POST /api/v1/models/{name}/versions/{v}/stage.
type StageRequest struct {
	Stage           registry.Stage `json:"stage"`
	ArchiveExisting bool           `json:"archive_existing,omitempty"`
	Reason          string         `json:"reason,omitempty"`
}

// AliasRequest is the body of PUT /api/v1/models/{name}/aliases/{alias}.
type AliasRequest struct {
	Version int64 `json:"version"`
}

// Alias is the answer of PUT /api/v1/models/{name}/aliases/{alias}.
type Alias struct {
	Model   string `json:"model"`
	Alias   string `json:"alias"`
	Version int64  `json:"version"`
}

// Endpoint is an endpoint's traffic policy as set (Policy) and as served (Live: with
// the model's aliases and a rollout's split); nil means none.
type Endpoint struct {
	Name   string         `json:"name"`
	Policy *router.Policy `json:"policy"`
	Live   *router.Policy `json:"live"`
}

// RolloutDetail is GET /api/v1/rollouts/{endpoint}: the status's fields at the top
// level (so "state" and "weights" read as in a list entry) and its history, oldest
// first.
type RolloutDetail struct {
	rollout.Status
	History []rollout.Change `json:"history"`
}

// Error is the body of every failure.
type Error struct {
	Error string `json:"error"`
}

// Rollout actions: POST /api/v1/rollouts/{endpoint}/{action}.
const (
	ActionPromote = "promote"
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionAbort   = "abort"
)

// Actions lists every rollout action.
var Actions = []string{ActionPromote, ActionPause, ActionResume, ActionAbort}

// AuditEntry is one row of GET /api/v1/audit: registry.AuditEntry with its detail as
// JSON rather than base64 (the outer Detail hides the embedded one).
type AuditEntry struct {
	registry.AuditEntry
	Detail json.RawMessage `json:"detail,omitempty"`
}

// NewAuditEntry converts a registry row; a detail that is not JSON is sent as a string.
func NewAuditEntry(e registry.AuditEntry) AuditEntry {
	d := json.RawMessage(e.Detail)
	if len(d) > 0 && !json.Valid(d) {
		d, _ = json.Marshal(string(e.Detail)) // a string always encodes
	}
	e.Detail = nil
	return AuditEntry{AuditEntry: e, Detail: d}
}
