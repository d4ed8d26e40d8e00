package shm

// errDisabled answers a server built without a Registry.
var errDisabled = invalidf("system shared memory is not enabled on this server")

// Ferry runs on CPUs only: its CUDA shared memory endpoints exist, since Triton's
// clients call them, list no region and refuse to register one. These give every
// transport the same answers.

// ErrCUDAUnsupported answers a CUDA shared memory registration.
var ErrCUDAUnsupported = invalidf("CUDA shared memory is not supported on this server (no GPU)")

// CUDARegionNotFound answers a CUDA shared memory status request naming a region: there
// is none.
func CUDARegionNotFound(name string) error {
	return notFoundf("unable to find cuda shared memory region %q: this server has no CUDA shared memory", name)
}
