package ortlib

import (
	"os"
	"path/filepath"
)

// rel is where `make ort` puts the library, relative to the repository root.
var rel = filepath.Join(".ort", "lib", "libonnxruntime.so.1")

// Find returns $FERRY_ORT_LIB when set, else the first of candidates that exists, else
// .ort/lib/libonnxruntime.so.1 in the working directory or the nearest folder above it;
// "" when there is none.
func Find(getenv func(string) string, candidates ...string) string {
	if p := getenv("FERRY_ORT_LIB"); p != "" {
		return p
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if p := filepath.Join(dir, rel); exists(p) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
