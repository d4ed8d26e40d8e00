package modelconfig

import (
	"fmt"
	"strings"
)

// CheckFileName refuses a file name from a config (default_model_filename,
// cc_model_filenames, label_filename) that could name anything but one entry of the
// folder it belongs to: no separator, no "..", not absolute, no control characters.
// The error says why, not which name: callers name it. Callers check before any file access, so that a name such as "../../etc/shadow" is
// never stat'ed: otherwise the error of a missing file would tell a client whether a
// file outside the repository exists.
func CheckFileName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("it is empty")
	case strings.ContainsAny(s, `/\`):
		return fmt.Errorf("it must not contain '/' or '\\'")
	case s == "." || strings.Contains(s, ".."):
		return fmt.Errorf("it must not contain \"..\"")
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("it must not contain control characters")
		}
	}
	return nil
}
