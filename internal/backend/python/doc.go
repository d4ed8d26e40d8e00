// Package python runs Triton-style Python models (backend "python"): a model folder
// holds config.pbtxt, which lists the inputs and outputs (nothing is auto-completed),
// and <version>/model.py, which defines class TritonPythonModel with initialize(args),
// execute(requests) and finalize().
//
// # Processes
//
// Each instance is one child process of the system python3 (Options.Interpreter, or
// the model's "python_interpreter" parameter), started with -u -B on a runner script
// that is embedded in the Go binary and written, with the module
// triton_python_backend_utils (pb_utils), to a temporary folder per instance. The
// runner needs only the Python standard library; Tensor.as_numpy() returns a numpy
// array when numpy is importable and otherwise a small pure-Python NDArray with
// tolist(), shape, dtype, reshape, astype and element-wise arithmetic. initialize()
// receives the args Triton gives it (model_config as JSON, model_name, model_version,
// model_instance_name, model_repository, ...).
//
// # Protocol
//
// Ferry and the runner exchange length-prefixed binary frames over two pipes, fds 3
// and 4 of the child, so stdout and stderr stay free for model.py; both are logged
// line by line with the model's name (stdout at Info, stderr at Warn; pb_utils.Logger
// picks its own level). Tensors travel as name, V2 datatype, shape and raw
// little-endian bytes: the request's bytes are written without a copy and the
// outputs are sliced from the response frame. runtime/ferry_python_runner.py
// documents the frames.
//
// # Batches
//
// A batch formed by the dynamic batcher reaches execute() as a list of requests, one
// per client request, as in Triton (Instance.ExecuteRequests); execute() must return
// one InferenceResponse per request. A response carrying a TritonError fails its
// request only (code INVALID_ARG answers 400, others 500). An exception raised by
// execute() fails only the requests that raise it: the runner calls execute() again
// for each request of the batch alone, so model code with side effects sees the
// requests of a failed batch twice. Outputs are checked against the config (name,
// datatype, shape) before they leave the backend.
//
// # Supervision
//
// A supervisor goroutine per instance restarts the process whenever it exits: at once
// the first time, then with a doubling back-off (100 ms up to 10 s) while it keeps
// crashing within 5 s of finishing initialize(); a process that served longer restarts
// at once again (restart.go says why 5 s). A crash fails the requests in flight with a
// [ProcessError] naming the model, pid and exit status. While the process is down the
// instance is not ready (Instance.Ready returns a [RestartingError]): requests wait
// for a start under way (up to Options.RestartWait) and fail at once, with a 503,
// while a back-off runs. Every child is reaped (no zombies),
// runs in its own process group (killed as a group) and dies with Ferry (Linux's
// parent-death signal). A caller that leaves while execute() runs gets its error at
// once; Python cannot interrupt execute(), so the next call first waits for those
// results. Close sends finalize, waits up to Options.FinalizeTimeout for the process
// to exit, then kills it.
//
// Not supported: decoupled models, BLS (calling other models from execute()),
// auto_complete_config, GPU tensors and DLPack, Triton's conda-pack
// EXECUTION_ENV_PATH (each refused with a clear error where it can be detected).
package python
