package core

import (
	"path"
	"strings"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// CheckModelName refuses model names that could address anything but one model folder.
func CheckModelName(s string) error { return CheckName("model", s) }

// CheckName refuses a model or version name that could escape a model folder or confuse
// logs: names become paths in the repository.
func CheckName(kind, s string) error {
	switch {
	case s == "":
		return Invalidf("%s name is empty", kind)
	case strings.ContainsAny(s, `/\`):
		return Invalidf("%s name %q is invalid: it must not contain '/' or '\\'", kind, s)
	case strings.Contains(s, ".."):
		return Invalidf("%s name %q is invalid: it must not contain \"..\"", kind, s)
	case s == ".":
		return Invalidf("%s name %q is invalid", kind, s)
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return Invalidf("%s name %q is invalid: it must not contain control characters", kind, s)
		}
	}
	return nil
}

func v2Type(t inference.DataType) string { return modelconfig.DType(t).String() }

// CheckLoadPath accepts a file path of a repository-extension load request ("file:<path>"):
// a clean relative path inside the model folder, such as 1/model.onnx. It is the one rule
// for every transport and for the repository that writes the files.
func CheckLoadPath(p string) error {
	switch {
	case p == "":
		return Invalidf("empty file path")
	case strings.ContainsAny(p, "\\\x00") || path.IsAbs(p) || path.Clean(p) != p || p == ".":
		return Invalidf("file path must be a clean relative path such as 1/model.onnx")
	case p == ".." || strings.HasPrefix(p, "../"):
		return Invalidf("file path must stay inside the model directory")
	}
	return nil
}
