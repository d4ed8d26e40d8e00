package python

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ResidentBytes is the anonymous resident memory of the instance's child process (what
// the interpreter and model.py hold), read from /proc; 0 while there is no process or
// where /proc cannot say. Memory accounting that measures Ferry's own process does not
// see a child's memory: this is the figure to add for a Python model.
func (in *Instance) ResidentBytes() int64 {
	pid := in.pid()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b)) // size resident shared text lib data dt, in pages
	if len(f) < 3 {
		return 0
	}
	resident, err1 := strconv.ParseInt(f[1], 10, 64)
	shared, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || resident < shared {
		return 0
	}
	return (resident - shared) * int64(os.Getpagesize())
}
