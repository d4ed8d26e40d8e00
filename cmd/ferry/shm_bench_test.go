package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
)

// BenchmarkSharedMemory16MiB sends one 16 MiB FP32 tensor through identity_fp32 and
// back, one request at a time, by each way a local client can: system shared memory
// (input and output in regions, over REST and gRPC), the binary tensor extension, and
// gRPC raw contents. The client's side is counted too: it copies the input into its
// mapping of the region and the output out of it each time, as a real client does.
//
//	go test -run=NONE -bench=SharedMemory16MiB -benchtime=20x ./cmd/ferry/
func BenchmarkSharedMemory16MiB(b *testing.B) {
	const n = 4 << 20 // FP32 elements: 16 MiB
	const size = 4 * n
	ts := startServer(b, shmRepo(b))
	input := shmFloats(n)
	obj := newShmObject(b, 2*size)
	fd, err := syscall.Open(obj.path, syscall.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	mem, err := syscall.Mmap(fd, 0, 2*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	syscall.Close(fd)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Munmap(mem)
	if _, err := ts.GRPC.SystemSharedMemoryRegister(b.Context(), &inference.SystemSharedMemoryRegisterRequest{Name: "bench", Key: obj.key, ByteSize: 2 * size}); err != nil {
		b.Fatal(err)
	}
	output := make([]byte, size)
	check := func(b *testing.B, got []byte) {
		if !bytes.Equal(got, input) {
			b.Fatal("the output differs from the input")
		}
	}

	b.Run("shm-rest", func(b *testing.B) {
		body := shmIdentityJSON(n, shmParams("bench", 0, size), shmParams("bench", size, size))
		b.SetBytes(size)
		for b.Loop() {
			copy(mem[:size], input)
			benchPost(b, ts.URL+"/v2/models/identity_fp32/infer", "", []byte(body))
			copy(output, mem[size:])
		}
		check(b, output)
	})
	b.Run("shm-grpc", func(b *testing.B) {
		req := shmIdentityGRPC(n, shmGRPCParams("bench", 0, size), shmGRPCParams("bench", size, size))
		b.SetBytes(size)
		for b.Loop() {
			copy(mem[:size], input)
			if _, err := ts.GRPC.ModelInfer(b.Context(), req); err != nil {
				b.Fatal(err)
			}
			copy(output, mem[size:])
		}
		check(b, output)
	})
	b.Run("binary-rest", func(b *testing.B) {
		hdr := fmt.Sprintf(`{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,%d],"parameters":{"binary_data_size":%d}}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]}`, n, size)
		body := append([]byte(hdr), input...)
		b.SetBytes(size)
		var got []byte
		for b.Loop() {
			got = benchPost(b, ts.URL+"/v2/models/identity_fp32/infer", strconv.Itoa(len(hdr)), body)
		}
		check(b, got[len(got)-size:])
	})
	b.Run("raw-grpc", func(b *testing.B) {
		req := &inference.ModelInferRequest{ModelName: "identity_fp32",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{1, n}}},
			RawInputContents: [][]byte{input}}
		b.SetBytes(size)
		var res *inference.ModelInferResponse
		for b.Loop() {
			if res, err = ts.GRPC.ModelInfer(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
		check(b, res.GetRawOutputContents()[0])
	})
}

// benchPost posts body (with an Inference-Header-Content-Length when hdrLen is set)
// and returns the 200 answer's body, uncompressed.
func benchPost(b *testing.B, url, hdrLen string, body []byte) []byte {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if hdrLen != "" {
		req.Header.Set("Inference-Header-Content-Length", hdrLen)
	}
	// Go's client asks for gzip unless told otherwise, and compressing 16 MiB would be
	// what this measures; tritonclient and perf_analyzer do not ask by default.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("%d %.300s %v", resp.StatusCode, got, err)
	}
	return got
}
