// Package platform is the room for small OS-level helpers that any package may use and
// that use nothing of Ferry's (archtest holds them a leaf): threadprio (which threads
// the Linux scheduler favours), gctune (the garbage collector's target from the memory
// limit), periodic (a task on a ticker that stops cleanly), filestate (whether a
// folder's files changed, for polling), ortlib (finding the ONNX Runtime library) and
// background (work that follows serving giving way to it in the Go scheduler). A new
// helper of that kind goes here; anything that knows models, tensors or requests does
// not.
package platform
