package filestate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Fingerprint summarises the files (names, sizes, modification times) and subfolders
// under paths, so polling can tell a changed version or config from an unchanged one
// without reading contents.
func Fingerprint(paths ...string) string {
	h := sha256.New()
	for _, p := range paths {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(h, "%s:err\n", path)
				return nil
			}
			if d.IsDir() {
				fmt.Fprintf(h, "%s:dir\n", path) // an ensemble's version folders are empty
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			fmt.Fprintf(h, "%s:%d:%d\n", path, info.Size(), info.ModTime().UnixNano())
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}
