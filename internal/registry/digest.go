package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DigestDir returns the SHA-256 (lowercase hex) of an artifact folder. It
// hashes, for each regular file in byte-wise sorted order of its
// slash-separated path relative to dir:
//
//	path bytes, one NUL byte, the size as 8 bytes big-endian, the content
//
// Folders themselves (empty ones included) do not count; the NUL and the fixed
// size field keep one file's end from passing for another's start. Symlinks and
// special files are refused, not followed (an artifact must not point outside
// itself).
func DigestDir(dir string) (string, error) {
	files, err := artifactFiles(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, rel := range files {
		if err := hashFile(h, dir, rel); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify re-hashes dir and refuses it unless it matches want.
func Verify(dir, want string) error {
	got, err := DigestDir(dir)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, want) {
		return errf(ErrInvalid, "artifact "+quote(dir), "digest mismatch: has %s, want %s", got, want)
	}
	return nil
}

func artifactFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return errf(ErrInvalid, "artifact "+quote(dir), "%q is a symlink or special file; only regular files are allowed", rel)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

func hashFile(h io.Writer, dir, rel string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], uint64(fi.Size()))
	io.WriteString(h, rel+"\x00")
	h.Write(head[:])
	n, err := io.Copy(h, io.LimitReader(f, fi.Size()+1))
	if err != nil {
		return err
	}
	if n != fi.Size() {
		return fmt.Errorf("artifact file %q changed size while hashing (%d, then %d bytes)", rel, fi.Size(), n)
	}
	return nil
}
