package core

import (
	"strings"

	"github.com/ferryml/ferry/internal/modelconfig"
	inference "github.com/ferryml/ferry/internal/proto"
)

// CheckModelName refuses model names that could address anything but one model folder.
func CheckModelName(s string) error {
	switch {
	case s == "":
		return Invalidf("model name is empty")
	case strings.Contains(s, ".."):
		return Invalidf("model name %q must not contain \"..\"", s)
	case strings.ContainsAny(s, "/\\\x00"):
		return Invalidf("model name %q must not contain \"/\", \"\\\" or NUL", s)
	}
	return nil
}

func v2Type(t inference.DataType) string { return modelconfig.DType(t).String() }
