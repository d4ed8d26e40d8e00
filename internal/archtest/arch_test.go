package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "github.com/ferryml/ferry/"

// banned lists, per package, import prefixes it must not import directly. (Transitive
// rules would be too blunt: core hands out scheduler leases, proto code pulls in grpc.)
var banned = map[string][]string{
	"internal/tensor":            {mod + "internal/"},
	"internal/v2json":            {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/modelconfig", mod + "internal/inference", mod + "internal/transport", mod + "internal/backend", mod + "internal/bench"},
	"internal/platform/periodic": {mod + "internal/"},
	"internal/platform/kgolog":   {mod + "internal/"},
	"internal/settings":          {mod + "internal/"},
	"internal/router":            {mod + "internal/"}, // a pure decision: registry and rollout feed it, core acts on it
	"internal/shm":               {mod + "internal/core", mod + "internal/transport", mod + "internal/inference", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/backend"},
	"internal/modelconfig":       {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/transport", mod + "internal/backend"},
	"internal/scheduler":         {mod + "internal/core", mod + "internal/repository", mod + "internal/transport", mod + "internal/backend", "net/http"},
	"internal/backend/onnx":      {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", "net/http", "github.com/prometheus/"},
	"internal/backend/remote":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", "github.com/prometheus/"},
	"internal/backend/python":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", "net/http", "github.com/prometheus/"},
	// Engines describe themselves (inspect, open, defaults, their config parameters), so
	// they read configs; they never reach up to what serves them, and they count what
	// they do without exporting it (metric definitions live in internal/monitor/metrics).
	"internal/backend/trees":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", "net/http", "github.com/prometheus/"},
	"internal/core":             {mod + "internal/repository", mod + "internal/transport", mod + "internal/backend", "net/http", "google.golang.org/grpc"},
	"internal/repository":       {mod + "internal/transport", mod + "internal/backend", "net/http"},
	"internal/transport/v2http": {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", "google.golang.org/grpc"},
	// The OpenAI-compatible edge decodes into llm.Request and calls an llm.Backend; what
	// answers (the native engine, the gateway) is wired by cmd/ferry.
	"internal/transport/openai": {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", mod + "internal/core", mod + "internal/llm/", "google.golang.org/grpc"},
	"internal/transport/v2grpc": {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", "net/http"},
	"internal/monitor/metrics":  {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend"},
	// The monitors read finished requests through core's Tap and answer their own
	// questions; the transports serve them, never the other way round.
	"internal/monitor/drift":       {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler"},
	"internal/monitor/drift/stats": {mod + "internal/"}, // the maths alone
	"internal/monitor/inferlog":    {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler"},
	"internal/monitor/quality":     {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler", mod + "internal/monitor/inferlog"},
	"internal/monitor/alert":       {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler", mod + "internal/monitor/drift", mod + "internal/monitor/quality"},
	"internal/explain":             {mod + "internal/"}, // TreeSHAP and KernelSHAP over plain numbers
	"internal/duration":            {mod + "internal/"}, // the configurations' Duration
	// The lanes beside the transports (batch, streaming) are clients of core like them.
	"internal/lane":   {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend"},
	"internal/stream": {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend"},
	"internal/batch":  {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", mod + "internal/transport"},
	// The LLM lane beside core: its seam is pure types, the engine drives ONNX Runtime
	// through backend/onnx alone, the gateway and the native models answer llm.Backend,
	// and none reaches core, the repository, the scheduler or a transport.
	"internal/llm":         {mod + "internal/"},
	"internal/llm/kv":      {mod + "internal/"},
	"internal/llm/sample":  {mod + "internal/core", mod + "internal/backend", mod + "internal/transport", mod + "internal/llm/engine"},
	"internal/llm/engine":  {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/transport", "net/http"},
	"internal/llm/native":  {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/transport", "net/http"},
	"internal/llm/gateway": {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", mod + "internal/transport", mod + "internal/llm/engine", mod + "internal/llm/native"},
	"internal/llmbench":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", mod + "internal/backend", mod + "internal/llm/engine", mod + "internal/llm/native", mod + "internal/llm/gateway"},
	// The one V2 client: a client of servers, never part of one.
	"internal/v2client": {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/modelconfig", mod + "internal/transport", mod + "internal/backend", mod + "internal/bench", mod + "internal/monitor"},
	"internal/bench":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/transport", mod + "internal/backend"},
	"internal/cache":    {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/modelconfig", mod + "internal/inference", mod + "internal/transport", mod + "internal/backend", mod + "internal/monitor"},
	"internal/netguard": {mod + "internal/"}, // a leaf: outbound address policy, used by the clients
	"internal/objstore": {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/modelconfig", mod + "internal/transport", mod + "internal/backend", mod + "internal/monitor"},
	"internal/registry": {mod + "internal/core", mod + "internal/scheduler", mod + "internal/transport", mod + "internal/backend", mod + "internal/repository"},
	// The shared layers know requests and RPCs, not what a transport makes of them.
	"internal/transport/middleware": {mod + "internal/"},
	// Admission decides; what a refusal looks like on the wire is the transports' business.
	"internal/admission": {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler", "net/http", "google.golang.org/grpc"},
	"internal/auth":      {mod + "internal/core", mod + "internal/scheduler", mod + "internal/repository", mod + "internal/backend", mod + "internal/transport/v2http", mod + "internal/transport/v2grpc", mod + "internal/transport/mgmt"}, // rules by route and method, never by calling the serving parts

	// The rollout controller reaches routing, models and the store through interfaces of
	// its own; only core's tap record crosses in.
	// Endpoints reach the repository through their Loader interface, never a transport.
	"internal/endpoint": {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler"},
	"internal/rollout":  {mod + "internal/transport", mod + "internal/repository", mod + "internal/backend", mod + "internal/scheduler", mod + "internal/registry", mod + "internal/router"},

	// The management API works through its Service; the wire types it shares with the
	// client sit beside the objects they compose, and the client is a client only.
	"internal/transport/mgmt": {mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", "google.golang.org/grpc"},
	"internal/mgmtapi":        {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", mod + "internal/transport"},
	"internal/mgmtclient":     {mod + "internal/core", mod + "internal/repository", mod + "internal/scheduler", mod + "internal/backend", mod + "internal/transport"},

	// The conformance suite drives the scheduler; it is a test helper, never a hop.
	"internal/backend/backendtest": {mod + "internal/core", mod + "internal/repository", mod + "internal/transport", "net/http"},
}

// cgoAllowed is the one package that may use cgo (STYLE: contain cgo).
const cgoAllowed = "internal/backend/onnx"

func TestImportRules(t *testing.T) {
	root := moduleRoot(t)
	for pkg, prefixes := range banned {
		out, err := goList(root, "-f", `{{join .Imports " "}}`, mod+pkg)
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+pkg {
				continue
			}
			for _, p := range prefixes {
				if strings.HasPrefix(dep, p) {
					t.Errorf("%s depends on %s; DESIGN.md forbids %s there", pkg, dep, p)
				}
			}
		}
	}
}

// TestHelpersOnlyInTests: a test helper package (its name ends in "test": backendtest,
// lanetest, authtest, otlptest) may assemble what the binary keeps apart (the conformance
// suite drives the scheduler, lanetest names engines), so only _test.go files and other
// helpers import it. (.Imports lists non-test imports only.)
func TestHelpersOnlyInTests(t *testing.T) {
	out, err := goList(moduleRoot(t), "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if isTestHelper(f[0]) {
			continue
		}
		for _, dep := range f[1:] {
			if strings.HasPrefix(dep, mod) && isTestHelper(dep) {
				t.Errorf("%s imports %s outside its _test.go files", f[0], dep)
			}
		}
	}
}

func isTestHelper(pkg string) bool {
	return strings.HasSuffix(pkg[strings.LastIndex(pkg, "/")+1:], "test")
}

func TestOnlyONNXBackendUsesCgo(t *testing.T) {
	out, err := goList(moduleRoot(t), "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./...")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] != "0" && f[0] != mod+cgoAllowed {
			t.Errorf("%s has cgo files; only %s may", f[0], cgoAllowed)
		}
	}
}

// TestEveryPackageHasDocGo: one package comment per package, in doc.go (STYLE 15).
func TestEveryPackageHasDocGo(t *testing.T) {
	out, err := goList(moduleRoot(t), "-f", "{{.Dir}} {{.Name}}", "./...")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] == "main" {
			continue
		}
		if _, err := os.Stat(filepath.Join(f[0], "doc.go")); err != nil {
			t.Errorf("%s: no doc.go with the package comment", f[0])
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func goList(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// TestPlatformIsALeaf: internal/platform holds small OS-level helpers (thread priority,
// GC tuning, periodic tasks, finding the ONNX Runtime library) that anything may use, so
// they use nothing of Ferry's outside internal/platform.
func TestPlatformIsALeaf(t *testing.T) {
	root := moduleRoot(t)
	out, err := goList(root, "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"internal/platform/...")
	if err != nil {
		t.Fatalf("go list internal/platform/...: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, mod) && !strings.HasPrefix(dep, mod+"internal/platform/") {
				t.Errorf("%s depends on %s; internal/platform is a leaf", fields[0], dep)
			}
		}
	}
}

// TestPackageNamesMatchFolders: a package is named for its folder, so an import reads as
// the path it comes from (commands are package main).
func TestPackageNamesMatchFolders(t *testing.T) {
	root := moduleRoot(t)
	out, err := goList(root, "-f", `{{.ImportPath}} {{.Name}}`, "./...")
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[1] == "main" {
			continue
		}
		if folder := fields[0][strings.LastIndex(fields[0], "/")+1:]; folder != fields[1] {
			t.Errorf("%s is package %s; name it %s, or move it", fields[0], fields[1], folder)
		}
	}
}

// TestOnlyCmdFerryListsBackends: engines are listed in one explicit table in cmd/ferry
// (DESIGN.md); no other package reaches for an engine by name, so adding or removing one
// touches its own folder and that table only. Test helpers, never linked into the binary,
// may build a small table of their own.
func TestOnlyCmdFerryListsBackends(t *testing.T) {
	root := moduleRoot(t)
	out, err := goList(root, "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		// The LLM engine is an engine too (generation on ONNX Runtime); it lives with
		// the lane it serves.
		if pkg == "cmd/ferry" || strings.HasPrefix(pkg, "internal/backend/") || pkg == "internal/llm/engine" || isTestHelper(pkg) {
			continue
		}
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, mod+"internal/backend/") {
				t.Errorf("%s imports %s; only cmd/ferry's table of backends names an engine", pkg, dep)
			}
		}
	}
}
