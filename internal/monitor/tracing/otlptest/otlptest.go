package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened for assertions.
type Span struct {
	TraceID, SpanID, ParentID string // lowercase hex; ParentID "" for a root
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Service                   string // the resource's service.name
	Resource                  map[string]string
	Attrs                     map[string]string // every attribute value in its string form
	Events                    []string
	Start, End                time.Time
	Status                    tracepb.Status_StatusCode
	TraceState                string
}

// Receiver collects the spans sent to it over either protocol. Safe for concurrent use.
type Receiver struct {
	GRPCAddr string // host:port of the OTLP/gRPC TraceService
	HTTPURL  string // base URL of the OTLP/HTTP receiver; spans go to HTTPURL+"/v1/traces"

	mu      sync.Mutex
	spans   []Span
	batches int
}

// Start runs both receivers until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(gs, &grpcService{r: r})
	go gs.Serve(ln) //nolint:errcheck // ends with Stop at cleanup
	r.GRPCAddr = ln.Addr().String()
	hs := httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	r.HTTPURL = hs.URL
	t.Cleanup(func() {
		gs.Stop()
		hs.Close()
	})
	return r
}

// Spans returns a copy of what arrived so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Batches counts the export requests received.
func (r *Receiver) Batches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

// WaitFor waits up to timeout until done holds for the spans received, and returns them;
// the test fails, listing what did arrive, if it never does.
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := r.Spans()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the receiver has no %s; it has:\n%s", timeout, what, Dump(spans))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dump lists spans one a line, for failure messages.
func Dump(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s trace=%s span=%s parent=%s kind=%v service=%s attrs=%v events=%v\n", s.Name, s.TraceID, s.SpanID, s.ParentID, s.Kind, s.Service, s.Attrs, s.Events)
	}
	return b.String()
}

type grpcService struct {
	collectorpb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g *grpcService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	g.r.add(req)
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// serveHTTP takes POST /v1/traces with a protobuf body, gzipped or not, as OTLP/HTTP says.
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "OTLP/HTTP traces are POSTed to /v1/traces", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want Content-Type application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, "decoding ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = io.Copy(w, bytes.NewReader(out))
}

func (r *Receiver) add(req *collectorpb.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, flatten(sp, res))
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	r.spans = append(r.spans, got...)
}

func flatten(sp *tracepb.Span, res map[string]string) Span {
	s := Span{TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()), Name: sp.GetName(),
		Kind: sp.GetKind(), Service: res["service.name"], Resource: res, Attrs: attrMap(sp.GetAttributes()),
		Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano())),
		Status: sp.GetStatus().GetCode(), TraceState: sp.GetTraceState()}
	if p := sp.GetParentSpanId(); len(p) > 0 {
		s.ParentID = hex.EncodeToString(p)
	}
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, e.GetName())
	}
	return s
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueString(kv.GetValue())
	}
	return m
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	}
	return v.String()
}

// Filter returns the spans for which ok holds.
func Filter(spans []Span, ok func(Span) bool) []Span {
	var out []Span
	for _, s := range spans {
		if ok(s) {
			out = append(out, s)
		}
	}
	return out
}

// Named returns the spans called name.
func Named(spans []Span, name string) []Span {
	return Filter(spans, func(s Span) bool { return s.Name == name })
}

// ChildrenOf returns the spans whose parent is id.
func ChildrenOf(spans []Span, id string) []Span {
	return Filter(spans, func(s Span) bool { return s.ParentID == id })
}
