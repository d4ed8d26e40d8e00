package v2grpc

import (
	"slices"
	"testing"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/ferryml/ferry/internal/inference"
)

const inferenceService = "inference.GRPCInferenceService"

// TestReflectionDescribesTheServices: a reflection client (what grpcurl is) lists the
// services and gets inference.GRPCInferenceService's file with every file it imports
// (model_config.proto), enough to build every method's messages without .proto files.
func TestReflectionDescribesTheServices(t *testing.T) {
	conn := testServer(t, New(&fakeCore{}, Options{}))
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := res.GetErrorResponse(); e != nil {
			t.Fatalf("reflection error: %v", e)
		}
		return res
	}

	res := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{inferenceService, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("ListServices = %v, lacks %s", names, want)
		}
	}

	res = ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: inferenceService}})
	set := &descriptorpb.FileDescriptorSet{}
	for _, b := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatal(err)
		}
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set) // fails if an imported file is missing
	if err != nil {
		t.Fatalf("building the files reflection sent: %v", err)
	}
	d, err := files.FindDescriptorByName(inferenceService)
	if err != nil {
		t.Fatal(err)
	}
	svc := d.(protoreflect.ServiceDescriptor)
	want := inference.File_grpc_service_proto.Services().ByName("GRPCInferenceService")
	if got, want := svc.Methods().Len(), want.Methods().Len(); got != want {
		t.Errorf("reflection's %s has %d methods, the compiled one %d", inferenceService, got, want)
	}
	cfg := svc.Methods().ByName("ModelConfig").Output().Fields().ByName("config").Message()
	if cfg.FullName() != "inference.ModelConfig" || cfg.Fields().ByName("max_batch_size") == nil {
		t.Errorf("ModelConfigResponse.config resolves to %s, want inference.ModelConfig from model_config.proto", cfg.FullName())
	}

	// v1alpha, which older grpcurl versions ask first, answers too.
	alpha, err := rpbalpha.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := alpha.Send(&rpbalpha.ServerReflectionRequest{MessageRequest: &rpbalpha.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	ares, err := alpha.Recv()
	if err != nil || len(ares.GetListServicesResponse().GetService()) == 0 {
		t.Errorf("v1alpha ListServices = %v, %v", ares, err)
	}
}
