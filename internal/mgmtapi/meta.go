package mgmtapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/ferryml/ferry/internal/registry"
)

// VersionMeta is what a push says about the new version; the server fills in the
// rest (version number, source, digest, stage, creator, time). Description has no
// column of its own in the registry: it is kept as the tag "description".
type VersionMeta struct {
	Description string             `json:"description,omitempty"`
	Backend     string             `json:"backend,omitempty"`
	Tags        map[string]string  `json:"tags,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	Params      map[string]string  `json:"params,omitempty"`
	Lineage     registry.Lineage   `json:"lineage"`
	Signature   registry.Signature `json:"signature"`
}

// MaxMetaBytes bounds the push metadata (it travels in a header or a small part).
const MaxMetaBytes = 64 << 10

// ParseVersionMeta decodes push metadata strictly: an unknown field (a misspelt
// "metrcs", or "digest", which only the server sets) is an error naming it.
func ParseVersionMeta(data []byte) (VersionMeta, error) {
	var m VersionMeta
	if len(bytes.TrimSpace(data)) == 0 {
		return m, nil
	}
	if len(data) > MaxMetaBytes {
		return m, fmt.Errorf("version metadata: %d bytes, over the %d-byte limit", len(data), MaxMetaBytes)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return VersionMeta{}, fmt.Errorf("version metadata: %w", err)
	}
	if d.More() {
		return VersionMeta{}, errors.New("version metadata: trailing data after the JSON object")
	}
	if m.Lineage.ParentVersion < 0 {
		return VersionMeta{}, fmt.Errorf("version metadata: lineage.parent_version %d is negative", m.Lineage.ParentVersion)
	}
	return m, nil
}

// Version is the ModelVersion the metadata asks the server to register for model.
func (m VersionMeta) Version(model string) registry.ModelVersion {
	tags := maps.Clone(m.Tags)
	if m.Description != "" {
		if tags == nil {
			tags = map[string]string{}
		}
		tags["description"] = m.Description
	}
	return registry.ModelVersion{Model: model, Backend: m.Backend, Tags: tags, Metrics: m.Metrics,
		Params: m.Params, Lineage: m.Lineage, Signature: m.Signature}
}
