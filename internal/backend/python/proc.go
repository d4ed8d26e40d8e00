package python

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/platform/threadprio"
)

// proc is one child process: the interpreter running the runner script on one model.py.
//
// Goroutines: a waiter (cmd.Wait, so the child is always reaped), a frame reader and two
// log readers (stdout, stderr). The waiter ends when the child exits; the log readers at
// EOF, which the child's exit brings; the frame reader at EOF, or once retire says
// nobody will read its frames anymore.
type proc struct {
	cmd       *exec.Cmd
	pid       int
	started   time.Time
	readyAt   time.Time // when initialize() finished (set by start, read by the supervisor)
	toChild   *os.File
	w         *bufio.Writer
	frames    chan frame    // from the reader goroutine; closed at EOF or a read error
	readErr   error         // why frames closed (io.EOF when the pipe closed cleanly)
	exited    chan struct{} // closed once the child has been reaped
	state     *os.ProcessState
	retired   chan struct{} // closed by retire: the reader may drop frames and quit
	users     sync.WaitGroup
	logsLeft  atomic.Int32
	logsDone  chan struct{}
	tail      lineTail
	abandoned int // execute frames whose caller left before the results came (owned by Execute)
	// watchdog kills the process when abandoned execute frames stay unanswered past the
	// hang timeout (owned by Execute; nil when nothing is abandoned or no timeout).
	watchdog *time.Timer
}

// spawn starts the interpreter on the runner with the protocol pipes as fds 3 and 4.
func spawn(interpreter, runner string, maxFrame uint64, log *slog.Logger) (*proc, error) {
	var toClose []*os.File
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			toClose = append(toClose, r, w)
		}
		return r, w, err
	}
	reqR, reqW, err1 := pipe()
	respR, respW, err2 := pipe()
	outR, outW, err3 := pipe()
	errR, errW, err4 := pipe()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		closeAll()
		return nil, err
	}
	growPipe(reqW)
	growPipe(respW)
	cmd := exec.Command(interpreter, "-u", "-B", runner)
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = []*os.File{reqR, respW} // fds 3 and 4 in the child
	cmd.SysProcAttr = sysProcAttr()
	// The child inherits the starting thread's scheduling class: it runs the model, so it
	// starts from an inference thread.
	if err := threadprio.Do(cmd.Start); err != nil {
		closeAll()
		return nil, err
	}
	for _, f := range []*os.File{reqR, respW, outW, errW} { // the child's ends
		f.Close()
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), toChild: reqW,
		w: bufio.NewWriterSize(reqW, 64<<10), frames: make(chan frame), exited: make(chan struct{}),
		retired: make(chan struct{}), logsDone: make(chan struct{})}
	go p.wait()
	go p.read(respR, maxFrame)
	p.logsLeft.Store(2)
	log = log.With("pid", p.pid)
	go p.pipeLog(outR, "stdout", slog.LevelInfo, log)
	go p.pipeLog(errR, "stderr", slog.LevelWarn, log)
	return p, nil
}

func (p *proc) wait() {
	p.cmd.Wait() // the exit status is in ProcessState
	p.state = p.cmd.ProcessState
	p.toChild.Close()
	close(p.exited)
}

func (p *proc) read(f *os.File, limit uint64) {
	defer close(p.frames)
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		fr, err := readFrame(r, limit)
		if err != nil {
			p.readErr = err
			return
		}
		select {
		case p.frames <- fr:
		case <-p.retired:
			p.readErr = io.EOF
			return
		}
	}
}

// send writes one frame. When ctx ends first the write stops at once, which can leave a
// partial frame in the pipe: the caller must then kill the process.
func (p *proc) send(ctx context.Context, kind byte, b *frameBuilder) error {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		p.toChild.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	err := writeFrame(p.w, kind, b)
	if !stop() {
		<-fired
		p.toChild.SetWriteDeadline(time.Time{})
		if err != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
	}
	if err != nil {
		p.w.Reset(p.toChild) // whatever is buffered belongs to a frame already broken
	}
	return err
}

// await returns the next frame; ok is false once the pipe has closed (the child died or
// broke the protocol: readErr says which).
func (p *proc) await(ctx context.Context) (f frame, ok bool, err error) {
	select {
	case f, ok = <-p.frames:
		return f, ok, nil
	case <-ctx.Done():
		return frame{}, false, context.Cause(ctx)
	}
}

// kill stops the child and anything it started in its process group. After the child
// has been reaped it does nothing: its pid may belong to another process by then.
func (p *proc) kill() {
	if p.hasExited() {
		return
	}
	killGroup(p.pid)
	p.cmd.Process.Kill()
}

// protocolErr is why the frames stopped when that was not a clean close of the pipe
// (nil otherwise). Read it only after frames has closed.
func (p *proc) protocolErr() error {
	if p.readErr == nil || errors.Is(p.readErr, io.EOF) {
		return nil
	}
	return p.readErr
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// reap kills the child if it still runs and waits until it has been reaped.
func (p *proc) reap() {
	p.kill()
	<-p.exited
}

// retire is called once the child has been reaped: it waits for the callers still using
// the process (they see it gone), lets the frame reader quit, and waits briefly for the
// last log lines.
func (p *proc) retire() {
	p.users.Wait()
	close(p.retired)
	select {
	case <-p.logsDone:
	case <-time.After(time.Second): // a grandchild that left the group holds the pipe
	}
}

// status describes how the child ended ("exit status 1", "signal: killed").
func (p *proc) status() string {
	if p.hasExited() {
		return p.state.String()
	}
	return "still running"
}

// pipeLog copies the child's output to the log line by line, with the level a
// pb_utils.Logger prefix names ("[ferry:ERROR] ...").
func (p *proc) pipeLog(f *os.File, stream string, level slog.Level, log *slog.Logger) {
	defer func() {
		f.Close()
		if p.logsLeft.Add(-1) == 0 {
			close(p.logsDone)
		}
	}()
	r := bufio.NewReaderSize(f, 16<<10)
	for {
		line, err := r.ReadSlice('\n')
		if text := strings.TrimRight(string(line), "\r\n"); text != "" {
			lv, msg := levelOf(text, level)
			log.Log(context.Background(), lv, "python "+stream, "line", msg)
			if stream == "stderr" {
				p.tail.add(msg)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // io.EOF once the child (and what it started) closed the pipe
		}
	}
}

var logPrefixes = []struct {
	prefix string
	level  slog.Level
}{
	{"[ferry:DEBUG] ", slog.LevelDebug}, {"[ferry:INFO] ", slog.LevelInfo},
	{"[ferry:WARN] ", slog.LevelWarn}, {"[ferry:ERROR] ", slog.LevelError},
}

func levelOf(line string, def slog.Level) (slog.Level, string) {
	for _, lp := range logPrefixes {
		if rest, ok := strings.CutPrefix(line, lp.prefix); ok {
			return lp.level, rest
		}
	}
	return def, line
}

// lineTail keeps the last few stderr lines, quoted in errors about a failed start.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 8

func (t *lineTail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, s)
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	for _, l := range t.lines {
		b.WriteString("\n  ")
		b.WriteString(l)
	}
	return b.String()
}
