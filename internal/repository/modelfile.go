package repository

import (
	"os"

	"github.com/ferryml/ferry/internal/inference"
)

// modelFile is the model file of version folder vdir under backend b when the config
// names none: the backend's choice (ModelFile) when it makes one, else DefaultFilename.
func (b Backend) modelFile(vdir string, cfg *inference.ModelConfig) string {
	if b.ModelFile != nil {
		if f := b.ModelFile(vdir, cfg); f != "" {
			return f
		}
	}
	return b.DefaultFilename
}

// fileExists reports whether path is a file (not a folder: a backend with no default
// filename must not match every version folder).
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
