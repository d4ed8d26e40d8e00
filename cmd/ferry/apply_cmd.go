package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

// apply_cmd.go: `ferry apply -f FILE`, declarative endpoints and rollouts in the
// spirit of kubectl apply: YAML (or JSON) documents with apiVersion, kind, metadata
// and spec.

// APIVersion is the apiVersion of Ferry's manifests (optional in a file).
const apiVersion = "ferry.dev/v1"

// manifest is one document of a file, decoded and validated.
type manifest struct {
	kind, name string
	policy     *router.Policy   // kind Endpoint
	rollout    *rollout.Rollout // kind Rollout
}

// document is a manifest's shape on disk.
type document struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// readManifests reads file ("-": stdin) and decodes and validates every document, so
// nothing is applied from a file with a mistake in it.
func readManifests(stdin io.Reader, file string) ([]manifest, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	var out []manifest
	var errs []error
	for i, doc := range docSeparator.Split(string(b), -1) {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			continue
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
			continue // an empty document, or only comments
		}
		m, err := decodeManifest(j)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			continue
		}
		out = append(out, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no documents", file)
	}
	return out, nil
}

func decodeManifest(j []byte) (manifest, error) {
	var d document
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return manifest{}, err
	}
	if d.APIVersion != "" && d.APIVersion != apiVersion {
		return manifest{}, fmt.Errorf("apiVersion %q: want %s", d.APIVersion, apiVersion)
	}
	m := manifest{kind: d.Kind, name: d.Metadata.Name}
	if m.name == "" {
		return m, fmt.Errorf("kind %s: metadata.name is required", d.Kind)
	}
	if len(d.Spec) == 0 {
		return m, fmt.Errorf("%s %s: spec is required", d.Kind, m.name)
	}
	switch d.Kind {
	case "Endpoint":
		p, err := router.Parse(d.Spec)
		if err != nil {
			return m, fmt.Errorf("Endpoint %s: spec: %w", m.name, err)
		}
		m.policy = p
	case "Rollout":
		r, err := rolloutSpec(m.name, d.Spec)
		if err != nil {
			return m, fmt.Errorf("Rollout %s: spec: %w", m.name, err)
		}
		m.rollout = &r
	default:
		return m, fmt.Errorf("kind %q (%s) is not one Ferry applies; want Endpoint or Rollout", d.Kind, m.name)
	}
	return m, nil
}

// rolloutSpec decodes a Rollout's spec strictly; the endpoint is metadata.name. It
// validates it as the server will, an empty stable standing for the current version.
func rolloutSpec(endpoint string, spec []byte) (rollout.Rollout, error) {
	var r rollout.Rollout
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if r.Endpoint != "" && r.Endpoint != endpoint {
		return r, fmt.Errorf("endpoint %q: the endpoint is metadata.name (%q); leave it out", r.Endpoint, endpoint)
	}
	r.Endpoint = endpoint
	check := r
	if check.Stable == "" {
		check.Stable = "(current)"
	}
	if _, err := check.Normalize(); err != nil {
		return r, err
	}
	return r, nil
}

func applyCommand(getenv func(string) string) *cobra.Command {
	r := &apiFlags{}
	var file string
	cmd := r.command("apply -f FILE", "Apply Endpoint and Rollout manifests (YAML or JSON, several documents split by ---)", cobra.NoArgs, func(cmd *cobra.Command, c *mgmtclient.Client, _ []string) error {
		if file == "" {
			return errors.New("apply: -f FILE is required (- for stdin)")
		}
		ms, err := readManifests(cmd.InOrStdin(), file)
		if err != nil {
			return err
		}
		return r.apply(cmd, c, ms)
	})
	r.bind(cmd, getenv)
	cmd.Flags().StringVarP(&file, "file", "f", "", "the manifest file, - for stdin")
	return cmd
}

// applied is one line of apply's report.
type applied struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Result string `json:"result"`
	State  string `json:"state,omitempty"`
}

func (r *apiFlags) apply(cmd *cobra.Command, c *mgmtclient.Client, ms []manifest) error {
	var done []applied
	report := func() error {
		return r.show(cmd.OutOrStdout(), done, func(tw *tabwriter.Writer) {
			for _, a := range done {
				fmt.Fprintf(tw, "%s/%s %s\t%s\n", a.Kind, a.Name, a.Result, a.State)
			}
		})
	}
	for _, m := range ms {
		var err error
		switch {
		case m.policy != nil:
			_, err = c.SetEndpoint(cmd.Context(), m.name, m.policy)
			done = append(done, applied{Kind: m.kind, Name: m.name, Result: "configured"})
		case m.rollout != nil:
			var s rollout.Status
			s, err = c.StartRollout(cmd.Context(), *m.rollout)
			done = append(done, applied{Kind: m.kind, Name: m.name, Result: "started", State: string(s.State)})
			err = startErr(m.name, err)
		}
		if err != nil {
			done = done[:len(done)-1]
			if rerr := report(); rerr != nil {
				return rerr
			}
			return fmt.Errorf("%s %s: %w", m.kind, m.name, err)
		}
	}
	return report()
}
