package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's walkthroughs, run with bash as a reader runs them: the same commands, in
// the same order, in a fresh folder holding examples/ (a copy of the model repository
// `make models` made, the rest linked) and a bin/ferry that is this test binary running
// ferry. What differs from a reader's terminal, and why:
//   - `go run ./tools/X` runs X built once by the test (the commands' folder is not the
//     module's);
//   - names a test run must not share with other runs (Redis streams) get a prefix;
//   - a server started in the foreground ("in another terminal: ...") runs in the
//     background, and the next command waits until it is ready;
//   - a command with an expected answer (what the README says it shows) is retried for a
//     few seconds, as a reader would look again.
//
// Nothing in CI ran the README's lane and LLM sections before these tests; the
// monitoring walkthrough broke once for a whole session unseen
// (TestREADMEMonitoringWalkthrough).

// TestREADMELanes is "Batch and streaming lanes": a million rows generated and scored
// in process, a server running the same job and a Redis Streams consumer, an event in
// and its score out.
func TestREADMELanes(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001)
	rd.needRedis()
	prefix := fmt.Sprintf("readme-%d-", os.Getpid())
	block := strings.NewReplacer("applicants", prefix+"applicants", "scores", prefix+"scores").
		Replace(readmeBlocks(t, "Batch and streaming lanes")[0])
	t.Cleanup(func() {
		exec.Command("redis-cli", "DEL", prefix+"applicants", prefix+"scores").Run()
	})
	rd.run(block, []printed{
		{"./bin/ferry batch", "1000000 rows scored, 0 rejected"},
		{"./bin/ferry jobs submit", "rows:      1000000/1000000"},
		{"redis-cli XRANGE", `{"id":"a1","score":0.31547773}`}, // the README's answer
		{"curl -s localhost:8000/metrics", `ferry_stream_produced_total{broker="redis"`},
	})
}

// TestREADMELLM is "LLMs": tinygpt through curl with `make run`'s server, then the
// gateway in front of a second Ferry.
func TestREADMELLM(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001, 9000, 9001)
	blocks := readmeBlocks(t, "LLMs: an OpenAI-compatible API, a native engine and a gateway")
	if len(blocks) != 2 {
		t.Fatalf("the LLM section has %d sh blocks, want 2 (make run's, the gateway's)", len(blocks))
	}
	stop := rd.start(makeRunCommand(t)) // "With `make run` running"
	rd.run(blocks[0], []printed{
		{"curl -s localhost:8000/v1/chat", `"finish_reason":"length"`},
		{"curl -sN localhost:8000/v1/comp", "\"usage\":{\"prompt_tokens\":4,"}, // sampled: the count of output tokens may vary
		{"curl -s localhost:8000/metrics", `vllm:time_to_first_token_seconds_count{model_name="tinygpt"} 2`},
	})
	stop() // "With the server from `make run` stopped"
	rd.run(blocks[1], []printed{
		{"curl -s localhost:8000/v1/chat", `"model":"chat"`},
		{"curl -s localhost:8000/metrics", `ferry_llm_gateway_spend_total{key="alice",team=""} `},
	})
}

// readmeRun is one walkthrough's folder, servers and commands.
type readmeRun struct {
	t    *testing.T
	dir  string
	env  []string
	repo string // the repository's root
}

// newReadmeRun makes the folder; the test is skipped when one of the README's fixed
// ports is taken (a reader's `make run`, say) or bash or curl is missing.
func newReadmeRun(t *testing.T, ports ...int) *readmeRun {
	t.Helper()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's commands need %s: %v", tool, err)
		}
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Skipf("the README's commands use port %d, which is taken here: %v", p, err)
		}
		ln.Close()
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "examples", "models", "tinygpt")); err != nil {
		t.Fatalf("the README's commands need the example models (make models): %v", err)
	}
	ort, err := findORT()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rd := &readmeRun{t: t, dir: dir, repo: repo,
		env: append(os.Environ(), runAsFerry+"="+argvFromArgs, "FERRY_ORT_LIB="+ort)}
	// The model repository is copied: pushing a version writes into it. The rest of
	// examples/ is only read.
	must(t, os.CopyFS(filepath.Join(dir, "examples", "models"), os.DirFS(filepath.Join(repo, "examples", "models"))))
	for _, name := range []string{"candidates", "monitoring.yaml"} {
		must(t, os.Symlink(filepath.Join(repo, "examples", name), filepath.Join(dir, "examples", name)))
	}
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "bin", "ferry"), []byte("#!/bin/sh\nexec '"+self+"' \"$@\"\n"), 0o755))
	return rd
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// needRedis skips the test without redis-cli and a Redis on its default address.
func (rd *readmeRun) needRedis() {
	if out, err := exec.Command("redis-cli", "PING").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("PONG")) {
		rd.t.Skipf("the README's streaming example needs redis-cli and redis-server on 127.0.0.1:6379: %v %s", err, out)
	}
}

var goRunTool = regexp.MustCompile(`go run \./tools/(\w+)`)

// printed is what the output of a block's command must hold: the next command, in
// order, that begins with cmd (a cmd ending in a newline is the whole command).
type printed struct{ cmd, holds string }

// run runs a block's commands in order, each to a zero exit, checking answers on the
// way. Commands beginning with one of background (traffic "in another terminal") run
// beside the next ones until the block ends.
func (rd *readmeRun) run(block string, answers []printed, background ...string) {
	rd.t.Helper()
	block = rd.tools(block)
	var behind []func()
	defer func() {
		for _, stop := range behind {
			stop()
		}
	}()
commands:
	for _, cmd := range readmeCommands(block) {
		if strings.HasPrefix(cmd, "./bin/ferry serve") {
			rd.start(cmd)
			continue
		}
		for _, p := range background {
			if strings.HasPrefix(cmd, p) {
				behind = append(behind, rd.beside(cmd))
				continue commands
			}
		}
		want := ""
		if len(answers) > 0 && strings.HasPrefix(cmd+"\n", answers[0].cmd) { // "...\n": the whole command
			want, answers = answers[0].holds, answers[1:]
		}
		rd.command(cmd, want)
	}
	for _, a := range answers {
		rd.t.Errorf("no command of the block, in order, begins with %q: the README changed, or this test did not follow it", a.cmd)
	}
}

// command runs one command with bash, again for up to 15 s while its output misses want.
func (rd *readmeRun) command(cmd, want string) {
	rd.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", cmd)
		c.Dir, c.Env = rd.dir, rd.env
		out, err := c.CombinedOutput()
		cancel()
		ok := err == nil && strings.Contains(string(out), want)
		if ok || want == "" || time.Now().After(deadline) {
			rd.t.Logf("$ %s\n%s", cmd, tail(out, 600))
			if !ok {
				rd.t.Fatalf("README command %q: %v; want %q in its output", cmd, err, want)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "..." + string(b[len(b)-n:])
	}
	return string(b)
}

// tools replaces the block's `go run ./tools/X` with X built once for this run.
func (rd *readmeRun) tools(block string) string {
	return goRunTool.ReplaceAllStringFunc(block, func(m string) string {
		return rd.tool(goRunTool.FindStringSubmatch(m)[1])
	})
}

// script runs a whole block as one bash script, stopping at the first failure, and
// returns its standard output.
func (rd *readmeRun) script(block string) string {
	rd.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", rd.tools(block))
	c.Dir, c.Env, c.Stdout, c.Stderr = rd.dir, rd.env, &stdout, &stderr
	if err := c.Run(); err != nil {
		rd.t.Fatalf("README block:\n%s\nfailed: %v\n%s%s", block, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// spawn starts a command in the background, its output to out (read it only once the
// command has been waited for).
func (rd *readmeRun) spawn(cmd string) (*exec.Cmd, *bytes.Buffer) {
	out := &bytes.Buffer{}
	c := exec.Command("bash", "-c", "exec "+cmd)
	c.Dir, c.Env, c.Stdout, c.Stderr = rd.dir, rd.env, out, out
	must(rd.t, c.Start())
	return c, out
}

// beside runs a command in the background; the returned stop interrupts it (Ctrl-C)
// if it is still running.
func (rd *readmeRun) beside(cmd string) (stop func()) {
	c, out := rd.spawn(cmd)
	rd.t.Logf("$ %s  (in another terminal)", cmd)
	return func() {
		c.Process.Signal(os.Interrupt)
		c.Wait()
		rd.t.Logf("(the other terminal's %q:)\n%s", cmd, tail(out.Bytes(), 600))
	}
}

// tool builds tools/name once for this run and returns its path.
func (rd *readmeRun) tool(name string) string {
	rd.t.Helper()
	bin := filepath.Join(rd.dir, ".tools", name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	c := exec.Command("go", "build", "-o", bin, "./tools/"+name)
	c.Dir = rd.repo
	if out, err := c.CombinedOutput(); err != nil {
		rd.t.Fatalf("go build ./tools/%s: %v\n%s", name, err, out)
	}
	return bin
}

var httpPortFlag = regexp.MustCompile(`--http-port[ =](\d+)`)

// start runs a `ferry serve` command in the background until the test ends, or until
// the returned stop, waiting until it is ready; a server that exits early, or with an
// error when stopped, fails the test.
func (rd *readmeRun) start(cmd string) (stop func()) {
	rd.t.Helper()
	cmd = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cmd), "&"))
	port := "8000"
	if m := httpPortFlag.FindStringSubmatch(cmd); m != nil {
		port = m[1]
	}
	ready, client := "http://127.0.0.1:"+port+"/v2/health/ready", http.DefaultClient
	if strings.Contains(cmd, "--tls-cert") {
		// Readiness only: the walkthrough's own commands check the certificate.
		ready = "https" + strings.TrimPrefix(ready, "http")
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	}
	c, out := rd.spawn(cmd)
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		c.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				rd.t.Errorf("README server %q stopped with %v:\n%s", cmd, err, tail(out.Bytes(), 2000))
			}
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			<-exited
			rd.t.Errorf("README server %q did not stop within 30 s of SIGTERM", cmd)
		}
	}
	rd.t.Cleanup(stop)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				rd.t.Logf("$ %s  (ready)", cmd)
				return stop
			}
		}
		select {
		case err := <-exited:
			stopped = true
			rd.t.Fatalf("README server %q exited before it was ready: %v\n%s", cmd, err, tail(out.Bytes(), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			<-exited
			stopped = true
			rd.t.Fatalf("README server %q not ready on port %s after a minute:\n%s", cmd, port, tail(out.Bytes(), 2000))
		}
	}
}

// readmeBlocks are the ```sh blocks of the README section with this heading.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	section := readmeSection(t, heading)
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		blocks, section = append(blocks, block), after
	}
}

// readmeSection is the text of the README section with this heading.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// readmeCommands splits a block into commands: continued lines joined, a here-document
// kept with its command, comment and blank lines left out.
func readmeCommands(block string) []string {
	var cmds []string
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		cmd := line
		for (strings.HasSuffix(cmd, "\\") || openQuote(cmd)) && i+1 < len(lines) {
			i++
			cmd += "\n" + lines[i] // bash joins them
		}
		if strings.Contains(cmd, "<<'EOF'") {
			for i+1 < len(lines) {
				i++
				cmd += "\n" + lines[i]
				if lines[i] == "EOF" {
					break
				}
			}
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// openQuote reports whether cmd ends inside a quoted string (which goes on on the
// next line).
func openQuote(cmd string) bool {
	var quote byte
	for i := 0; i < len(cmd); i++ {
		switch c := cmd[i]; {
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case c == quote:
			quote = 0
		case c == '\\' && quote != '\'':
			i++
		case c == '#' && quote == 0 && (i == 0 || cmd[i-1] == ' '):
			return false // a comment to the end of the line
		}
	}
	return quote != 0
}

// makeRunCommand is `make run`'s server command, from the Makefile.
func makeRunCommand(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(b), "\nrun:")
	if !ok {
		t.Fatal("the Makefile has no run target")
	}
	for _, line := range strings.Split(recipe, "\n")[1:] {
		if strings.HasPrefix(line, "\t") {
			return strings.ReplaceAll(strings.TrimSpace(line), "$(MODELS)", "examples/models")
		}
	}
	t.Fatal("the Makefile's run target has no command")
	return ""
}

// TestREADMETryIt is "Try it" with `make run`'s server: the curl tour, and the binary
// data example, whose output must be what the README says it prints.
func TestREADMETryIt(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001)
	blocks := readmeBlocks(t, "Try it")
	if len(blocks) != 3 {
		t.Fatalf("the Try it section has %d sh blocks, want 3 (curl, binary, grpcurl)", len(blocks))
	}
	rd.start(makeRunCommand(t))
	rd.run(blocks[0], []printed{
		{"curl -s localhost:8000/v2/health/ready", "200"},
		{"curl -s localhost:8000/v2\n", `"extensions":[`},
		{"curl -s localhost:8000/v2/models/simple\n", `"name":"simple"`},
		{"curl -s localhost:8000/v2/models/identity_fp32/config", `"name":"identity_fp32"`},
		{"curl -s localhost:8000/v2/models/simple/infer", `"data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]`},
		{"curl -s localhost:8000/v2/models/accumulator/infer", `"data":[10]`},
		{"curl -s localhost:8000/v2/models/accumulator/infer", `"data":[15]`},
		{"curl -s localhost:8000/v2/models/simple/stats", `"inference_count":1`},
		{"curl -s -X POST localhost:8000/v2/repository/index", `{"name":"simple","version":"1","state":"READY"}`},
		{"curl -s localhost:8000/metrics", `ferry_request_success_total{model="simple",version="1"} 1`},
	})
	if got, want := rd.script(blocks[1]), readmePrinted(t, "Try it"); got != want {
		t.Errorf("the binary data example printed\n%s\nthe README says it prints\n%s", got, want)
	}
	if _, err := exec.LookPath("grpcurl"); err != nil {
		t.Log("grpcurl is not installed here: its block is not run")
		return
	}
	rd.run(blocks[2], []printed{
		{"grpcurl -plaintext localhost:8001 list", "inference.GRPCInferenceService"},
		{"grpcurl -plaintext localhost:8001 inference.GRPCInferenceService/ServerReady", `"ready": true`},
		{"grpcurl -plaintext", "rawOutputContents"},
	})
}

// TestREADMEShipSafely is "Ship models safely" with `make run`'s server: a version
// pushed and rolled out under the README's own traffic, a failing one rolled back, an
// alias in an inference URL.
func TestREADMEShipSafely(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001)
	rd.start(makeRunCommand(t))
	rd.run(readmeBlocks(t, "Ship models safely")[0], []printed{
		{"./bin/ferry models list", "mlp"},
		{"./bin/ferry models push mlp examples/candidates/mlp_v2", "2"},
		{"./bin/ferry rollout status mlp --watch", "Succeeded"},
		{"./bin/ferry models push mlp examples/candidates/mlp_failing", "3"},
		{"./bin/ferry rollout status mlp --watch", "Aborting"},
		{"curl -s -D - -o /dev/null -X POST localhost:8000/v2/models/mlp/versions/champion/infer", "X-Ferry-Model-Version: 2"},
	}, "./bin/ferry bench")
}

// TestREADMESecuring is "Securing a deployment": a key limited to mlp*, a self-signed
// certificate, a server on TLS that refuses the call without the key and the other
// model's with it.
func TestREADMESecuring(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skipf("the README's TLS example needs openssl: %v", err)
	}
	rd.run(readmeBlocks(t, "Securing a deployment")[0], []printed{
		{"curl -s --cacert .ferry-secure/server.pem https://localhost:8000/v2/models/mlp -o", "401"},
		{"curl -s --cacert .ferry-secure/server.pem https://localhost:8000/v2/models/mlp -H", `{"name":"mlp","versions":["1"]`},
		{"curl -s --cacert .ferry-secure/server.pem https://localhost:8000/v2/models/simple", `may use only models matching [\"mlp*\"]"}`},
	})
}

// readmePrinted is the first plain ``` block after "It prints:" in the section.
func readmePrinted(t *testing.T, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(readmeSection(t, heading), "It prints:\n\n```\n")
	if !ok {
		t.Fatalf("README.md's %q has no \"It prints:\" block", heading)
	}
	printed, _, _ := strings.Cut(after, "```")
	return printed
}

// TestREADMEMonitoring is "Watch models in production": a baseline uploaded, calm
// traffic (no drift, the alert inactive), shifted traffic (drift, the alert firing, the
// retraining hook handed a data window), the inference log read back, ground truth
// joined. TestREADMEMonitoringWalkthrough checks the same story's reports in detail.
func TestREADMEMonitoring(t *testing.T) {
	rd := newReadmeRun(t, 8000, 8001)
	rd.run(readmeBlocks(t, "Watch models in production")[0], []printed{
		{"curl -s localhost:8000/api/v1/drift/tabular", `"dataset_drift":false`},
		{"curl -s localhost:8000/api/v1/alerts", `"state":"inactive"`},
		{"curl -s localhost:8000/api/v1/drift/tabular", `"dataset_drift":true`},
		{"curl -s localhost:8000/api/v1/alerts", `"state":"firing"`},
		{"grep -o '\"data_uri\"", `"data_uri":"http://127.0.0.1:8000/api/v1/logs?limit=100000&model=tabular&since=`},
		{"./bin/ferry logs --model tabular", `"model":"tabular"`},
		{"curl -s -X POST localhost:8000/api/v1/feedback", `"accepted":2`},
		{"curl -s localhost:8000/api/v1/quality/tabular", `"accuracy"`},
	})
}
