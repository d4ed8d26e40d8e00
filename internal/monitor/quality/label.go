package quality

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrInvalid marks feedback the store refuses: a missing id, a label that is neither
// a class nor a value, too many labels in one call.
var ErrInvalid = errors.New("invalid feedback")

// MaxIDBytes bounds a request id in feedback.
const MaxIDBytes = 256

// Label is the ground truth for one request: Class for a classifier (JSON "label": a
// class index or a class name), Value for a regressor (JSON "value"). Exactly one is set.
type Label struct {
	ID    string   `json:"id"`
	Class *Class   `json:"label,omitempty"`
	Value *float64 `json:"value,omitempty"`
}

// Class is a true class: an index into the model's output columns, or a name that
// ModelConfig.Classes maps to one. In JSON it is a number or a string.
type Class struct {
	Index int    // valid when Name is ""
	Name  string // a class name; "" when the class came as an index
}

// MarshalJSON writes an index as a number and a name as a string.
func (c Class) MarshalJSON() ([]byte, error) {
	if c.Name != "" {
		return json.Marshal(c.Name)
	}
	return []byte(strconv.Itoa(c.Index)), nil
}

// UnmarshalJSON takes a non-negative integer or a non-empty string.
func (c *Class) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("label: %w", err)
		}
		if s == "" {
			return errors.New("label: an empty class name")
		}
		*c = Class{Name: s}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("label: want a class index or a class name, got %.40s", b)
	}
	if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return fmt.Errorf("label: a class index must be an integer >= 0, got %s", b)
	}
	*c = Class{Index: int(f)}
	return nil
}

// check says what is wrong with l, or nil.
func (l *Label) check() error {
	switch {
	case l.ID == "":
		return errors.New("the id is empty")
	case len(l.ID) > MaxIDBytes:
		return fmt.Errorf("the id is %d bytes, over the %d-byte limit", len(l.ID), MaxIDBytes)
	case l.Class == nil && l.Value == nil:
		return errors.New(`neither "label" (a class) nor "value" (a regression target) is set`)
	case l.Class != nil && l.Value != nil:
		return errors.New(`both "label" and "value" are set; send one`)
	case l.Value != nil && (math.IsNaN(*l.Value) || math.IsInf(*l.Value, 0)):
		return errors.New(`"value" is not a finite number`)
	}
	return nil
}

// checkLabels names up to a few bad labels of a call, all at once.
func checkLabels(model string, labels []Label, limit int) error {
	if model == "" {
		return fmt.Errorf("%w: the model is empty", ErrInvalid)
	}
	if len(labels) > limit {
		return fmt.Errorf("%w: %d labels in one call, over the limit of %d", ErrInvalid, len(labels), limit)
	}
	var errs []error
	for i := range labels {
		if err := labels[i].check(); err != nil {
			errs = append(errs, fmt.Errorf("labels[%d] (id %.64q): %v", i, labels[i].ID, err))
			if len(errs) == 5 {
				errs = append(errs, errors.New("(further errors not listed)"))
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}
