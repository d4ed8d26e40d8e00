//go:build !unix

package onnx

import "os"

// mapFile reads the model file where memory mapping is not available.
func mapFile(path string) (b []byte, release func(), err error) {
	b, err = os.ReadFile(path)
	return b, func() {}, err
}
