package v2grpc

import (
	"context"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/shm"
)

// Triton's shared memory extension over gRPC: the region RPCs. Inputs and outputs in
// shared memory are decoded in decode.go and written in infer.go; the checks and copies
// are package shm's, shared with the REST transport.

// SystemSharedMemoryStatus implements inference.GRPCInferenceServiceServer.
func (s *Server) SystemSharedMemoryStatus(_ context.Context, req *inference.SystemSharedMemoryStatusRequest) (*inference.SystemSharedMemoryStatusResponse, error) {
	regions, err := s.shm.Status(req.GetName())
	if err != nil {
		return nil, s.statusError(err)
	}
	res := &inference.SystemSharedMemoryStatusResponse{Regions: make(map[string]*inference.SystemSharedMemoryStatusResponse_RegionStatus, len(regions))}
	for _, rg := range regions {
		res.Regions[rg.Name] = &inference.SystemSharedMemoryStatusResponse_RegionStatus{Name: rg.Name, Key: rg.Key, Offset: rg.Offset, ByteSize: rg.ByteSize}
	}
	return res, nil
}

// SystemSharedMemoryRegister implements inference.GRPCInferenceServiceServer.
func (s *Server) SystemSharedMemoryRegister(_ context.Context, req *inference.SystemSharedMemoryRegisterRequest) (*inference.SystemSharedMemoryRegisterResponse, error) {
	if err := s.shm.Register(req.GetName(), req.GetKey(), req.GetOffset(), req.GetByteSize()); err != nil {
		return nil, s.statusError(err)
	}
	return &inference.SystemSharedMemoryRegisterResponse{}, nil
}

// SystemSharedMemoryUnregister implements inference.GRPCInferenceServiceServer. An
// empty name unregisters every region.
func (s *Server) SystemSharedMemoryUnregister(_ context.Context, req *inference.SystemSharedMemoryUnregisterRequest) (*inference.SystemSharedMemoryUnregisterResponse, error) {
	var err error
	if name := req.GetName(); name != "" {
		err = s.shm.Unregister(name)
	} else {
		err = s.shm.UnregisterAll()
	}
	if err != nil {
		return nil, s.statusError(err)
	}
	return &inference.SystemSharedMemoryUnregisterResponse{}, nil
}

// CudaSharedMemoryStatus implements inference.GRPCInferenceServiceServer: this server
// has no GPU, so there is no region to list.
func (s *Server) CudaSharedMemoryStatus(_ context.Context, req *inference.CudaSharedMemoryStatusRequest) (*inference.CudaSharedMemoryStatusResponse, error) {
	if name := req.GetName(); name != "" {
		return nil, s.statusError(shm.CUDARegionNotFound(name))
	}
	return &inference.CudaSharedMemoryStatusResponse{Regions: map[string]*inference.CudaSharedMemoryStatusResponse_RegionStatus{}}, nil
}

// CudaSharedMemoryRegister implements inference.GRPCInferenceServiceServer. It answers
// INVALID_ARGUMENT, as REST answers 400 through the same error table: UNIMPLEMENTED would
// say the RPC does not exist, which clients and tests read as a missing feature of the
// protocol rather than of this machine.
func (s *Server) CudaSharedMemoryRegister(context.Context, *inference.CudaSharedMemoryRegisterRequest) (*inference.CudaSharedMemoryRegisterResponse, error) {
	return nil, s.statusError(shm.ErrCUDAUnsupported)
}

// CudaSharedMemoryUnregister implements inference.GRPCInferenceServiceServer: there is
// nothing to unregister.
func (s *Server) CudaSharedMemoryUnregister(context.Context, *inference.CudaSharedMemoryUnregisterRequest) (*inference.CudaSharedMemoryUnregisterResponse, error) {
	return &inference.CudaSharedMemoryUnregisterResponse{}, nil
}
