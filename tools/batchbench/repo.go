package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryml/ferry/internal/modelconfig"
)

// maxBatch is every config's max_batch_size: the setting, half the example's 64.
const maxBatch = 32

// config is one way of serving the mlp: a model of its own in the repository.
type config struct {
	Name string
	// Batching is false for a model without dynamic_batching.
	Batching bool
	// DelayUS is max_queue_delay_microseconds.
	DelayUS int
	// Fixed turns the adaptive delay off (adaptive_batching "false").
	Fixed bool
	// Label heads the config's columns in the tables.
	Label string
}

// The configs issue 14 compares, and greedy batching (delay 0) for reference.
var (
	cfgNone     = config{Name: "mlp_none", Label: "none"}
	cfgFixed5   = config{Name: "mlp_fixed5", Batching: true, DelayUS: 5000, Fixed: true, Label: "fixed5"}
	cfgFixed2   = config{Name: "mlp_fixed2", Batching: true, DelayUS: 2000, Fixed: true, Label: "fixed2"}
	cfgAdaptive = config{Name: "mlp_adaptive5", Batching: true, DelayUS: 5000, Label: "adaptive5"}
	cfgGreedy   = config{Name: "mlp_greedy", Batching: true, Label: "greedy"}
)

// configs lists the configs to measure, in the order each round runs them.
func configs(greedy bool) []config {
	cs := []config{cfgNone, cfgFixed5, cfgFixed2, cfgAdaptive}
	if greedy {
		cs = append(cs, cfgGreedy)
	}
	return cs
}

// pbtxt is the config's config.pbtxt.
func (c config) pbtxt() string {
	var b strings.Builder
	fmt.Fprintf(&b, `name: %q
platform: "onnxruntime_onnx"
max_batch_size: %d
input [ { name: "input" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
`, c.Name, maxBatch)
	if !c.Batching {
		return b.String()
	}
	if c.DelayUS == 0 {
		b.WriteString("dynamic_batching { }\n")
	} else {
		fmt.Fprintf(&b, "dynamic_batching { max_queue_delay_microseconds: %d }\n", c.DelayUS)
	}
	if c.Fixed {
		fmt.Fprintf(&b, "parameters { key: %q value { string_value: \"false\" } }\n", modelconfig.ParamAdaptiveBatching)
	}
	return b.String()
}

// writeRepository lays out dir as a model repository: each config's config.pbtxt and
// version 1 holding the model file at onnxPath.
func writeRepository(dir, onnxPath string, cs []config) error {
	if _, err := os.Stat(onnxPath); err != nil {
		return fmt.Errorf("the mlp model: %w (make models writes it)", err)
	}
	for _, c := range cs {
		vdir := filepath.Join(dir, c.Name, "1")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name, "config.pbtxt"), []byte(c.pbtxt()), 0o644); err != nil {
			return err
		}
		if err := linkOrCopy(onnxPath, filepath.Join(vdir, "model.onnx")); err != nil {
			return fmt.Errorf("model %s: %w", c.Name, err)
		}
	}
	return nil
}

// linkOrCopy hard-links src to dst, which costs no space, and copies it where the two
// are on different file systems.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
