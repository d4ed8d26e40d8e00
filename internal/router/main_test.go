package router

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// attrs is a request's attributes as a transport would hold them: header names
// lower-cased (as gRPC metadata keys are), parameters as sent.
type attrs struct{ headers, params map[string]string }

func (a *attrs) Header(name string) string { return a.headers[strings.ToLower(name)] }
func (a *attrs) Param(name string) string  { return a.params[name] }

func header(k, v string) *attrs { return &attrs{headers: map[string]string{k: v}} }
func param(k, v string) *attrs  { return &attrs{params: map[string]string{k: v}} }

// arms builds arms from version, weight pairs.
func arms(vw ...any) []Arm {
	var as []Arm
	for i := 0; i < len(vw); i += 2 {
		as = append(as, Arm{Version: vw[i].(string), Weight: vw[i+1].(int)})
	}
	return as
}
