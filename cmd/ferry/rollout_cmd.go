package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/rollout"
)

// rollout_cmd.go: `ferry rollout ...`, a server's rollouts through its management API.

func rolloutCommand(getenv func(string) string) *cobra.Command {
	r := &apiFlags{}
	cmd := &cobra.Command{Use: "rollout", Short: "Start, watch, promote, pause, resume and abort rollouts on a running server"}
	r.bind(cmd, getenv)
	cmd.AddCommand(r.startCommand(), r.statusCommand(),
		r.command("list", "List every endpoint's rollout", cobra.NoArgs, r.listRollouts),
		r.command("history NAME", "Show a rollout's changes, oldest first", cobra.ExactArgs(1), r.history))
	for _, a := range mgmtapi.Actions {
		short := map[string]string{
			mgmtapi.ActionPromote: "Send the candidate to 100% now (then the final bake)",
			mgmtapi.ActionPause:   "Hold the rollout where it is",
			mgmtapi.ActionResume:  "Continue a paused rollout, or pass an indefinite pause step",
			mgmtapi.ActionAbort:   "Send everything back to the stable version",
		}[a]
		cmd.AddCommand(r.command(a+" NAME", short, cobra.ExactArgs(1), r.action(a)))
	}
	return cmd
}

func (r *apiFlags) action(a string) func(*cobra.Command, *mgmtclient.Client, []string) error {
	return func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		s, err := c.RolloutAction(cmd.Context(), args[0], a)
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), s, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, summary(s)) })
	}
}

// summary is one line about a rollout: state, step, weights.
func summary(s rollout.Status) string {
	line := fmt.Sprintf("%s: %s", s.Rollout.Endpoint, s.State)
	if s.Reason != "" {
		line += " (" + s.Reason + ")"
	}
	if n := len(s.Rollout.Strategy.Steps); n > 0 && !s.State.Terminal() {
		line += fmt.Sprintf(", step %d/%d", min(s.Step+1, n), n)
	}
	return line + ", weights " + weightList(s)
}

// weightList is "1=90 2=10", stable first.
func weightList(s rollout.Status) string {
	var parts []string
	for _, v := range versionsOf(s) {
		parts = append(parts, fmt.Sprintf("%s=%d", v, s.Weights[v]))
	}
	if s.Mirror != nil {
		parts = append(parts, fmt.Sprintf("mirror %s=%d%%", s.Mirror.Version, s.Mirror.Percent))
	}
	return strings.Join(parts, " ")
}

// versionsOf lists the stable version, the candidate, then any other weighted version.
func versionsOf(s rollout.Status) []string {
	vs := []string{}
	for _, v := range []string{s.Rollout.Stable, s.Rollout.Candidate} {
		if v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	var rest []string
	for v := range s.Weights {
		if !slices.Contains(vs, v) {
			rest = append(rest, v)
		}
	}
	slices.Sort(rest)
	return append(vs, rest...)
}

func (r *apiFlags) listRollouts(cmd *cobra.Command, c *mgmtclient.Client, _ []string) error {
	rs, err := c.Rollouts(cmd.Context())
	return showResult(r, cmd, rs, err, rolloutTable)
}

func rolloutTable(tw *tabwriter.Writer, rs []rollout.Status) {
	rows(tw, "ENDPOINT\tSTATE\tSTABLE\tCANDIDATE\tWEIGHTS\tSTARTED", rs, func(s rollout.Status) []any {
		return []any{s.Rollout.Endpoint, s.State, s.Rollout.Stable, s.Rollout.Candidate, weightList(s), stamp(s.Started)}
	})
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func (r *apiFlags) history(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
	d, err := c.Rollout(cmd.Context(), args[0])
	if err != nil {
		return err
	}
	return r.show(cmd.OutOrStdout(), d.History, func(tw *tabwriter.Writer) { changeTable(tw, d.History) })
}

func changeTable(tw *tabwriter.Writer, hs []rollout.Change) {
	rows(tw, "TIME\tEVENT\tFROM\tTO\tWEIGHTS\tMESSAGE", hs, func(h rollout.Change) []any {
		return []any{h.Time.Local().Format("15:04:05.000"), h.Event, h.From, h.To, weightMap(h.Weights), h.Message}
	})
}

func weightMap(w map[string]int) string {
	var parts []string
	for v, p := range w {
		parts = append(parts, fmt.Sprintf("%s=%d", v, p))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// startFlags build a Rollout from the command line.
type startFlags struct {
	file, candidate, stable, preset string
	steps                           []int
	step, failureLimit, minSamples  int
	mirrorPercent                   int
	interval, mirrorDuration        time.Duration
	maxErrorRate, maxP99            float64
}

var presets = []string{"canary", "linear", "blue-green", "shadow-then-canary"}

func (f *startFlags) rollout(cmd *cobra.Command, endpoint string) (rollout.Rollout, error) {
	iv := rollout.Duration(f.interval)
	canary := rollout.Canary{Steps: f.steps, Interval: iv}
	r := rollout.Rollout{Endpoint: endpoint, Stable: f.stable, Candidate: f.candidate,
		Analysis: rollout.Analysis{Interval: iv, FailureLimit: f.failureLimit, MinSamples: f.minSamples}}
	switch f.preset {
	case "canary":
		r.Strategy.Canary = &canary
	case "linear":
		r.Strategy.Linear = &rollout.Linear{Step: f.step, Interval: iv}
	case "blue-green":
		r.Strategy.BlueGreen = &rollout.BlueGreen{Bake: iv, RollbackWindow: iv}
	case "shadow-then-canary":
		r.Strategy.ShadowThenCanary = &rollout.ShadowThenCanary{MirrorPercent: f.mirrorPercent, MirrorDuration: rollout.Duration(f.mirrorDuration), Canary: canary}
	default:
		return r, fmt.Errorf("--preset %q: want one of %s", f.preset, strings.Join(presets, ", "))
	}
	if f.maxErrorRate >= 0 { // on unless turned off: a rollout judges errors, as Flagger's does by default
		r.Analysis.Metrics = append(r.Analysis.Metrics, rollout.Metric{Name: rollout.ErrorRate, Max: &f.maxErrorRate})
	}
	if cmd.Flags().Changed("max-p99") {
		r.Analysis.Metrics = append(r.Analysis.Metrics, rollout.Metric{Name: rollout.LatencyP99, Max: &f.maxP99})
	}
	return r, nil
}

func (r *apiFlags) startCommand() *cobra.Command {
	f := &startFlags{}
	cmd := r.command("start [NAME]", "Start a rollout of NAME to --candidate (or of the Rollout in -f FILE)", cobra.MaximumNArgs(1), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		var ro rollout.Rollout
		var err error
		switch {
		case f.file != "" && len(args) == 0:
			ro, err = rolloutFromFile(cmd.InOrStdin(), f.file)
		case f.file != "":
			return errors.New("rollout start: give NAME with flags, or -f FILE, not both")
		case len(args) == 0:
			return errors.New("rollout start: NAME is required (or -f FILE)")
		case f.candidate == "":
			return errors.New("rollout start: --candidate is required")
		default:
			ro, err = f.rollout(cmd, args[0])
		}
		if err != nil {
			return err
		}
		s, err := c.StartRollout(cmd.Context(), ro)
		if err != nil {
			return startErr(ro.Endpoint, err)
		}
		return r.show(cmd.OutOrStdout(), s, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, "started", summary(s)) })
	})
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "a YAML or JSON file holding a Rollout (kind: Rollout), - for stdin")
	fl.StringVar(&f.candidate, "candidate", "", "the version to roll out (a number or an alias)")
	fl.StringVar(&f.stable, "stable", "", "the version serving now (default: the server's current one)")
	fl.StringVar(&f.preset, "preset", "canary", "strategy: "+strings.Join(presets, ", "))
	fl.IntSliceVar(&f.steps, "steps", []int{10, 50, 100}, "canary weights, rising to 100 (canary, shadow-then-canary)")
	fl.IntVar(&f.step, "step", 10, "percent added per step (linear)")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "analysis interval, and the bake after each step")
	fl.IntVar(&f.failureLimit, "failure-limit", 0, "failed measurements tolerated before the rollout aborts (-1: never abort)")
	fl.IntVar(&f.minSamples, "min-samples", 0, "requests an interval needs for a verdict")
	fl.Float64Var(&f.maxErrorRate, "max-error-rate", 0.01, "the candidate's highest tolerated error rate per interval (0.01 = 1%; negative: not judged)")
	fl.Float64Var(&f.maxP99, "max-p99", 0, "the candidate's highest tolerated p99 latency, in seconds")
	fl.IntVar(&f.mirrorPercent, "mirror-percent", 100, "percent of requests copied to the candidate (shadow-then-canary)")
	fl.DurationVar(&f.mirrorDuration, "mirror-duration", time.Minute, "how long the shadow phase lasts (shadow-then-canary)")
	return cmd
}

// startErr explains a 409: the endpoint already has a rollout.
func startErr(endpoint string, err error) error {
	if mgmtclient.StatusOf(err) == 409 {
		return fmt.Errorf("rollout %s: a rollout is already in progress on this endpoint; wait for it to end or stop it (ferry rollout abort %s): %w", endpoint, endpoint, err)
	}
	return err
}

// rolloutFromFile reads the one Rollout in a manifest file.
func rolloutFromFile(stdin io.Reader, file string) (rollout.Rollout, error) {
	ms, err := readManifests(stdin, file)
	if err != nil {
		return rollout.Rollout{}, err
	}
	var found []rollout.Rollout
	for _, m := range ms {
		if m.rollout != nil {
			found = append(found, *m.rollout)
		}
	}
	if len(found) != 1 {
		return rollout.Rollout{}, fmt.Errorf("%s: holds %d Rollouts; rollout start -f wants exactly one (ferry apply -f takes many)", file, len(found))
	}
	return found[0], nil
}

func (r *apiFlags) statusCommand() *cobra.Command {
	var watch bool
	cmd := r.command("status NAME", "Show a rollout: state, step, weights, analysis, last changes", cobra.ExactArgs(1), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		if watch {
			return r.watch(cmd, c, args[0])
		}
		d, err := c.Rollout(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) { statusTable(tw, d) })
	})
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the rollout until it ends (redraws on a terminal, a line per change otherwise)")
	return cmd
}

// barWidth is the length of a full weight bar.
const barWidth = 40

func bar(pct int) string {
	n := min(max(pct, 0), 100) * barWidth / 100
	return strings.Repeat("█", n) + strings.Repeat("░", barWidth-n)
}

func statusTable(tw *tabwriter.Writer, d mgmtapi.RolloutDetail) {
	s := d.Status
	fmt.Fprintf(tw, "Rollout:\t%s (stable %s, candidate %s)\n", s.Rollout.Endpoint, s.Rollout.Stable, s.Rollout.Candidate)
	state := string(s.State)
	if s.Reason != "" {
		state += " (" + s.Reason + ")"
	}
	fmt.Fprintf(tw, "State:\t%s\n", state)
	if n := len(s.Rollout.Strategy.Steps); n > 0 {
		fmt.Fprintf(tw, "Step:\t%d/%d\n", min(s.Step+1, n), n)
	}
	fmt.Fprintln(tw, "Weights:")
	for _, v := range versionsOf(s) {
		role := map[bool]string{true: "stable", false: "candidate"}[v == s.Rollout.Stable]
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%3d%%\n", v, role, bar(s.Weights[v]), s.Weights[v])
	}
	if s.Mirror != nil {
		fmt.Fprintf(tw, "Mirror:\t%d%% of requests copied to %s\n", s.Mirror.Percent, s.Mirror.Version)
	}
	a := s.Analysis
	fmt.Fprintf(tw, "Analysis:\t%s: %d measurements, %d successful, %d failed, %d inconclusive, %d errors\n",
		orDash(string(a.Phase)), a.Measurements, a.Successful, a.Failed, a.Inconclusive, a.Errors)
	if a.Message != "" {
		fmt.Fprintf(tw, "\t%s\n", a.Message)
	}
	last := d.History[max(len(d.History)-5, 0):]
	if len(last) > 0 {
		fmt.Fprintln(tw, "\nLast changes:")
		changeTable(tw, last)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watchEvery is how often --watch polls.
const watchEvery = 500 * time.Millisecond

// watch polls until the rollout reaches a terminal state. On a terminal it redraws
// the table on each change; otherwise (a pipe, a file, a CI log) it prints one line
// per change (one JSON object per line with -o json).
func (r *apiFlags) watch(cmd *cobra.Command, c *mgmtclient.Client, endpoint string) error {
	out := cmd.OutOrStdout()
	redraw := isTerminal(out) && r.output == "table"
	var last string
	for {
		d, err := c.Rollout(cmd.Context(), endpoint)
		if err != nil {
			return err
		}
		if key := watchKey(d); key != last {
			last = key
			if err := r.watchFrame(out, d, redraw); err != nil {
				return err
			}
		}
		if d.State.Terminal() {
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(watchEvery):
		}
	}
}

// watchKey changes when anything a frame shows changes.
func watchKey(d mgmtapi.RolloutDetail) string {
	a := d.Analysis
	return fmt.Sprintf("%s|%s|%d|%s|%d/%d/%d/%d|%d", d.State, d.Reason, d.Step, weightList(d.Status), a.Successful, a.Failed, a.Inconclusive, a.Errors, len(d.History))
}

func (r *apiFlags) watchFrame(out io.Writer, d mgmtapi.RolloutDetail, redraw bool) error {
	switch {
	case r.output == "json":
		return json.NewEncoder(out).Encode(d) // one line per change
	case redraw:
		fmt.Fprint(out, "\033[H\033[2J") // home, clear screen
		return r.show(out, d, func(tw *tabwriter.Writer) { statusTable(tw, d) })
	}
	_, err := fmt.Fprintf(out, "%s %s\n", time.Now().Format("15:04:05"), summary(d.Status))
	return err
}

// isTerminal says whether w is a character device (a terminal), not a pipe or file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
