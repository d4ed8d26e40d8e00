// Package backendtest is the conformance suite every backend passes (STYLE convention
// 14): [Run] opens a backend's instances through a [Factory] and checks the contract
// the scheduler relies on — correct outputs for one row and a full batch, the outputs
// asked for, a cancelled context refused, instances running side by side, requests
// packed by the dynamic batcher over two instances each getting back its own outputs,
// and Close being safe to repeat.
//
// It drives instances through internal/scheduler itself, so that "every backend plugs
// into the same scheduler" is tested rather than assumed. Backends import this package
// only from their _test.go files; their own code still never imports the scheduler.
package backendtest
