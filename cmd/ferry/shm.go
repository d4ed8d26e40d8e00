package main

import (
	"log/slog"

	"github.com/ferryml/ferry/internal/shm"
)

// closeSharedMemory unmaps every region clients registered and left registered. Run
// calls it once both transports have stopped, so no request is still copying.
func closeSharedMemory(regions *shm.Registry, log *slog.Logger) {
	if err := regions.Close(); err != nil {
		log.Warn("unmapping shared memory regions", "err", err)
	}
}
