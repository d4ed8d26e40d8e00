# Ferry build. `make run` serves the generated example repository; `make test` runs every test.
ORT_VERSION := 1.30.0
ORT_DIR     := $(CURDIR)/.ort
ORT_LIB     := $(ORT_DIR)/lib/libonnxruntime.so.1
MODELS      := examples/models
GO          ?= go
GOFLAGS_LD  := -ldflags "-X main.defaultORTLib=$(ORT_LIB)"

export FERRY_ORT_LIB ?= $(ORT_LIB)

.PHONY: all build run test ort models proto fuzz vet clean bench-batching

all: build

# The ONNX Runtime shared library ships inside the npm package onnxruntime-node;
# `npm pack` fetches the tarball without installing anything, once.
ort: $(ORT_LIB)
$(ORT_LIB):
	mkdir -p $(ORT_DIR)/pack $(ORT_DIR)/lib
	cd $(ORT_DIR)/pack && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null
	tar -xzf $(ORT_DIR)/pack/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR)/pack \
		package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	mv $(ORT_DIR)/pack/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $(ORT_LIB)
	rm -rf $(ORT_DIR)/pack

build: ort
	$(GO) build $(GOFLAGS_LD) -o bin/ferry ./cmd/ferry

models:
	$(GO) run ./tools/modelgen -out $(MODELS) -candidates examples/candidates

run: build models
	./bin/ferry serve --model-repository $(MODELS) --data-dir .ferry-data

# The lanes' tests (batch, streaming) score the example models as users would.
test: ort models
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# Issue 14's benchmark: no batching, fixed 5 and 2 ms delays and the adaptive delay on the
# mlp, over REST and gRPC at 1, 4, 16 and 64 clients (about 7 minutes with the defaults), e.g.
# make bench-batching BENCH_FLAGS="--rounds 3 --markdown /tmp/batching.md"
BENCH_FLAGS ?=
bench-batching: build models
	$(GO) run ./tools/batchbench $(BENCH_FLAGS)

# Run every fuzz target (the decoders of requests, configs, model files, upstream answers,
# the Python runner's frames and bench data files) for FUZZTIME each; go test fuzzes one at a time.
FUZZTIME ?= 30s
fuzz: ort
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			$(GO) test $$pkg -run=NONE -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) || exit 1; \
		done; \
	done

# Regenerate the committed protobuf code (needs protoc from Debian's protobuf-compiler
# and protoc-gen-go / protoc-gen-go-grpc on PATH); builds never need this.
proto:
	cd internal/inference && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative *.proto

clean:
	rm -rf bin $(MODELS)
