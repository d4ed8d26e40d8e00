package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Artifacts is Ferry's managed artifact store: uploaded model folders under
// dataDir/artifacts/MODEL/DIGEST. Content addressing makes a re-upload of the
// same folder a no-op and a stored folder immutable.
type Artifacts struct {
	root     string
	maxBytes int64
	maxFiles int
}

// Default upload limits; over-large uploads are refused, not truncated.
const (
	DefaultMaxArtifactBytes = 8 << 30
	DefaultMaxArtifactFiles = 10000
)

// NewArtifacts returns the store rooted at dataDir/artifacts. maxBytes bounds
// the unpacked size of one upload (<= 0: DefaultMaxArtifactBytes).
func NewArtifacts(dataDir string, maxBytes int64) *Artifacts {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxArtifactBytes
	}
	return &Artifacts{root: filepath.Join(dataDir, "artifacts"), maxBytes: maxBytes, maxFiles: DefaultMaxArtifactFiles}
}

// Put unpacks a tar stream (the version folder's contents) for model into a
// temporary folder beside its final place, digests it (DigestDir) and renames
// it into place, so a reader never sees a half-written artifact. It refuses
// absolute paths, "..", links of any kind (a link could point out of the
// root, and DigestDir refuses them anyway), special files, duplicate entries,
// and totals over the limit. It returns the folder and its digest.
func (a *Artifacts) Put(ctx context.Context, model string, r io.Reader) (dir, digest string, err error) {
	if err := validModel(model); err != nil {
		return "", "", err
	}
	parent := filepath.Join(a.root, model)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", "", fmt.Errorf("artifacts: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".upload-")
	if err != nil {
		return "", "", fmt.Errorf("artifacts: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left to remove
	if err := a.untar(ctx, model, r, tmp); err != nil {
		return "", "", err
	}
	if digest, err = DigestDir(tmp); err != nil {
		return "", "", err
	}
	dir = filepath.Join(parent, digest)
	if err := os.Rename(tmp, dir); err != nil {
		// Same digest already stored (an earlier or concurrent upload): same bytes.
		if _, serr := os.Stat(dir); serr == nil {
			return dir, digest, nil
		}
		return "", "", fmt.Errorf("artifacts: %w", err)
	}
	return dir, digest, nil
}

func (a *Artifacts) untar(ctx context.Context, model string, r io.Reader, dst string) error {
	obj := fmt.Sprintf("model %q upload", model)
	tr := tar.NewReader(r)
	var total int64
	files := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errf(ErrInvalid, obj, "reading tar: %v", err)
		}
		rel, err := entryPath(h.Name)
		if err != nil {
			return errf(ErrInvalid, obj, "entry %q: %v", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeDir:
			if rel != "" {
				if err := os.MkdirAll(filepath.Join(dst, rel), 0o755); err != nil {
					return err
				}
			}
			continue
		case tar.TypeReg:
		default:
			return errf(ErrInvalid, obj, "entry %q: links and special files are not allowed (type %q)", h.Name, h.Typeflag)
		}
		if rel == "" {
			return errf(ErrInvalid, obj, "entry %q: a file needs a name", h.Name)
		}
		if files++; files > a.maxFiles {
			return errf(ErrInvalid, obj, "more than %d files", a.maxFiles)
		}
		if total += h.Size; h.Size < 0 || total > a.maxBytes {
			return errf(ErrInvalid, obj, "larger than the %d-byte limit", a.maxBytes)
		}
		if err := writeEntry(filepath.Join(dst, rel), tr, h.Size); err != nil {
			return errf(ErrInvalid, obj, "entry %q: %v", h.Name, err)
		}
	}
	if files == 0 {
		return errf(ErrInvalid, obj, "the tar holds no files")
	}
	return nil
}

// entryPath turns a tar name into a relative path inside the upload, or says
// why it may not be one. Names are refused, not cleaned into shape: a tar
// that tries to escape is hostile or broken either way.
func entryPath(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || (len(name) > 1 && name[1] == ':'):
		return "", errors.New("absolute paths are not allowed")
	case strings.ContainsRune(name, '\\'):
		return "", errors.New(`'\' is not allowed in names`)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "", errors.New("control characters are not allowed in names")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("'..' is not allowed in names")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return filepath.FromSlash(clean), nil
}

func writeEntry(p string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// O_EXCL: a second entry with the same name is refused, never a silent overwrite.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return errors.New("duplicate entry")
	}
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("truncated: %d of %d bytes", n, size)
	}
	return err
}
