package v2grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/grpcmeta"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/monitor/reqlog"
	"github.com/ferryml/ferry/internal/shm"
)

// streamWindow bounds the requests of one ModelStreamInfer stream that are in flight
// (received, not yet answered). When it is full the stream stops reading, which pushes
// back on the client through gRPC flow control.
const streamWindow = 64

// ModelInfer implements inference.GRPCInferenceServiceServer.
func (s *Server) ModelInfer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	res, err := s.infer(ctx, req)
	if err != nil {
		return nil, s.statusErrorContext(ctx, err)
	}
	return res, nil
}

// infer decodes, runs and encodes one request. The response size is checked here so
// the client reads which limit it hit instead of grpc's generic refusal.
func (s *Server) infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	creq, err := decodeInfer(req, s.limits, s.shm)
	if err != nil {
		return nil, err
	}
	if md, ok := grpcmeta.Incoming(ctx); ok {
		if tp := md.Get("traceparent"); len(tp) > 0 {
			creq.TraceParent = core.TraceParent(tp[0])
		}
		creq.Header = mdHeader(md) // routes may match or hash a metadata key
	}
	shmInputs := sharedBuffers(req, creq) // taken before core can touch the inputs
	fields := reqlog.FromContext(ctx)     // what the log's lines for this request carry
	fields.Request(req.GetId(), req.GetModelName(), req.GetModelVersion())
	cres, err := s.core.Infer(ctx, creq)
	if err != nil {
		return nil, err
	}
	fields.Answered(cres.Version)
	shared, err := s.shm.WriteOutputs(cres.Outputs, creq.OutputParameters)
	if err != nil {
		return nil, err
	}
	res, err := encodeInfer(req, cres, shared)
	if err != nil {
		return nil, err
	}
	if size := proto.Size(res); size > s.limits.MaxGRPCMessageSize {
		return nil, core.TooLargef("response of model %q is %d bytes, over the gRPC message limit of %d bytes", res.GetModelName(), size, s.limits.MaxGRPCMessageSize)
	}
	shm.Recycle(append(shmInputs, recyclable(req)...), cres.Outputs) // answered and encoded: nothing reads them now
	return res, nil
}

// mdHeader is gRPC metadata as core reads headers: the first value of a key.
type mdHeader metadata.MD

func (m mdHeader) Get(name string) string {
	if v := metadata.MD(m).Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// sharedBuffers returns the buffers decodeInfer copied the shared memory inputs into.
func sharedBuffers(req *inference.ModelInferRequest, creq *core.InferRequest) [][]byte {
	var bufs [][]byte
	for i, in := range req.GetInputs() {
		if _, ok := in.GetParameters()[shm.ParamRegion]; ok {
			bufs = append(bufs, creq.Inputs[i].Data)
		}
	}
	return bufs
}

// ModelStreamInfer implements inference.GRPCInferenceServiceServer. Requests run
// concurrently (up to streamWindow) and are answered in the order they arrived. A
// failed request is answered with error_message and the stream goes on, as in Triton.
// Requests of one sequence (same sequence_id) reach core one after another, in order,
// since a sequence's state depends on it.
//
// The handler owns two kinds of goroutines and returns only after all have exited:
// the receiver (ends when Recv fails, which it does once the client closes its side,
// the stream breaks, or a send fails and aborts the stream) and one worker per request
// (ends when core.Infer returns; its context is cancelled when the handler gives up).
func (s *Server) ModelStreamInfer(stream grpc.BidiStreamingServer[inference.ModelInferRequest, inference.ModelStreamInferResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	var workers sync.WaitGroup
	pending := make(chan chan *inference.ModelStreamInferResponse, streamWindow)
	recvErr := make(chan error, 1)
	go func() { recvErr <- s.receive(ctx, stream, pending, &workers) }()

	err := s.sendInOrder(ctx, stream, pending)
	cancel()
	for range pending { // lets the receiver exit; it closes pending
	}
	workers.Wait()
	if rerr := <-recvErr; err == nil && !errors.Is(rerr, io.EOF) {
		err = rerr
	}
	return err
}

// receive reads requests until Recv fails, starting a worker for each and queueing
// its answer channel on pending, in arrival order. It closes pending when it returns.
func (s *Server) receive(ctx context.Context, stream grpc.BidiStreamingServer[inference.ModelInferRequest, inference.ModelStreamInferResponse], pending chan<- chan *inference.ModelStreamInferResponse, workers *sync.WaitGroup) error {
	defer close(pending)
	var seqs sequences
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		answer := make(chan *inference.ModelStreamInferResponse, 1)
		select {
		case pending <- answer:
		case <-ctx.Done():
			return ctx.Err()
		}
		after, done := seqs.next(req)
		workers.Go(func() {
			if after != nil {
				select {
				case <-after:
				case <-ctx.Done():
				}
			}
			answer <- s.streamOne(ctx, req)
			if done != nil {
				close(done)
			}
		})
	}
}

// sendInOrder sends each queued answer once it is ready, until pending is closed and
// drained or sending fails.
func (s *Server) sendInOrder(ctx context.Context, stream grpc.BidiStreamingServer[inference.ModelInferRequest, inference.ModelStreamInferResponse], pending <-chan chan *inference.ModelStreamInferResponse) error {
	for answer := range pending {
		var res *inference.ModelStreamInferResponse
		select {
		case res = <-answer:
		case <-ctx.Done():
			return s.statusError(ctx.Err())
		}
		if err := stream.Send(res); err != nil {
			return err
		}
	}
	return nil
}

// streamOne answers one stream request. On failure the response carries the error
// text and, as in Triton, the request's id so the client can tell which one failed.
func (s *Server) streamOne(ctx context.Context, req *inference.ModelInferRequest) *inference.ModelStreamInferResponse {
	res, err := s.infer(ctx, req)
	if err != nil {
		if c := codeOf(err); c == codes.Internal || c == codes.Unknown { // lost work
			s.log.ErrorContext(ctx, "grpc stream request failed", "model", req.GetModelName(), "err", err)
		}
		return &inference.ModelStreamInferResponse{
			ErrorMessage:  err.Error(),
			InferResponse: &inference.ModelInferResponse{Id: req.GetId()},
		}
	}
	return &inference.ModelStreamInferResponse{InferResponse: res}
}

// sequences chains the requests of each sequence on one stream. Only the receiver
// goroutine uses it.
type sequences struct {
	last map[string]chan struct{} // sequence key -> closed when its latest request is done
}

// maxTrackedSequences bounds the map; finished entries are dropped past it.
const maxTrackedSequences = 1024

// next returns what a request must wait for (nil if nothing) and the channel to close
// when it is done (nil if it belongs to no sequence).
func (q *sequences) next(req *inference.ModelInferRequest) (after <-chan struct{}, done chan struct{}) {
	key, ok := sequenceKey(req)
	if !ok {
		return nil, nil
	}
	if q.last == nil {
		q.last = make(map[string]chan struct{})
	}
	if len(q.last) >= maxTrackedSequences {
		q.prune()
	}
	after = q.last[key]
	done = make(chan struct{})
	q.last[key] = done
	return after, done
}

func (q *sequences) prune() {
	for k, ch := range q.last {
		select {
		case <-ch:
			delete(q.last, k)
		default:
		}
	}
}

// sequenceKey reads the request's sequence_id; 0 and "" mean no sequence, as in Triton.
func sequenceKey(req *inference.ModelInferRequest) (string, bool) {
	switch v := req.GetParameters()["sequence_id"].GetParameterChoice().(type) {
	case *inference.InferParameter_Int64Param:
		return fmt.Sprintf("%s\x00i%d", req.GetModelName(), v.Int64Param), v.Int64Param != 0
	case *inference.InferParameter_Uint64Param:
		return fmt.Sprintf("%s\x00i%d", req.GetModelName(), v.Uint64Param), v.Uint64Param != 0
	case *inference.InferParameter_StringParam:
		return fmt.Sprintf("%s\x00s%s", req.GetModelName(), v.StringParam), v.StringParam != ""
	}
	return "", false
}
