package modelconfig

import "fmt"

// FieldError is one problem with one field of a config. Validate and
// AutoComplete return them joined (errors.Join), so errors.As finds the first
// and the message lists them all, one a line.
type FieldError struct {
	// Field is the path of the field: "max_batch_size", `input["image"].dims[1]`,
	// "dynamic_batching.preferred_batch_size[0]", "instance_group[1].count".
	Field string
	// Reason says what is wrong and, where it helps, the value found.
	Reason string
	// Err is the cause Reason was written from, if any (a parameter's parse error).
	Err error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns the cause, so errors.Is sees through a parameter's error as it did
// through the fmt.Errorf("%w") wrapping the backends used before.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// tensorPath names an input or output by its name, or by its index when the
// name is missing: input["image"], output[2].
func tensorPath(kind string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s[%d]", kind, i)
	}
	return fmt.Sprintf("%s[%q]", kind, name)
}
