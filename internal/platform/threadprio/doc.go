// Package threadprio puts model execution in front of request handling when the two
// compete for the CPU.
//
// On a machine whose cores are all busy, every time a request-handling thread wakes
// (a packet arrived, a response is due) Linux lets it preempt whatever runs, and that is
// usually ONNX Runtime: its intra-op threads meet at the end of every operator, so one
// preempted thread stalls the other, which spins at the barrier. Measured on 2 cores
// with the mlp example, the thread that called Run was preempted about 2600 times a
// second, and a 64-row run took 1.27 ms in the server against 1.0 ms alone.
//
// Background moves the process's threads to SCHED_BATCH, a normal-priority class whose
// threads get the same share of CPU but do not preempt on wakeup. Inference threads
// (the thread that runs a batch, ONNX Runtime's pool, a Python model's process) stay in
// SCHED_OTHER: Foreground marks the calling thread, and Do runs a function on a thread
// marked so, so that the threads and processes it creates inherit the class. Neither
// needs privileges: switching between the two normal classes is open to any process.
// On other systems every call is a no-op.
package threadprio
