// Package jobs is the server's table of batch jobs (POST /api/v1/jobs): it queues them,
// runs at most a few at once through a run function the binary supplies (a batch job
// over core), tracks their progress, and cancels them. It knows nothing of files or
// models; the run function does the work.
package jobs
