package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// checkpoint is what a job has committed; it is replaced atomically after each chunk.
type checkpoint struct {
	Job      string   `json:"job"` // hash of the options that decide the output
	Input    inputID  `json:"input"`
	Chunks   int      `json:"chunks"` // part files committed: part-000000 .. part-(Chunks-1)
	Pos      position `json:"pos"`    // where the next chunk starts
	Rows     int64    `json:"rows"`
	Rejected int64    `json:"rejected"`
	Total    int64    `json:"total"`
	Done     bool     `json:"done"` // every chunk is in; the final files are being put in place
}

// inputID tells a changed input from the one a checkpoint was written for.
type inputID struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	ETag    string `json:"etag,omitempty"`
}

const checkpointFile = "checkpoint.json"

// jobHash names what decides a job's output; Concurrency, Priority and ChunkRows do not.
func jobHash(o Options, output, rejects string) string {
	b, _ := json.Marshal(struct {
		Input, Output, Rejects, Model, Version string
		Mapping                                map[string][]string
		IDs                                    []string
		Shard                                  string
	}{o.Input, output, rejects, o.Model, o.Version, o.Mapping, o.IDColumns, o.Shard.String()})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// loadCheckpoint reads dir's checkpoint; nil when there is none.
func loadCheckpoint(dir string) (*checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("%s: unreadable checkpoint (%v); delete the folder to start over", dir, err)
	}
	return &cp, nil
}

// save replaces the checkpoint atomically: written beside it, synced, renamed, and the
// folder synced, so a kill leaves the old one or the new one.
func (cp *checkpoint) save(dir string) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, checkpointFile), b)
}

func writeAtomic(path string, data []byte) error {
	err := writeFile(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func partName(k int, ext string) string { return fmt.Sprintf("part-%06d%s", k, ext) }
func rejectsName(k int) string          { return fmt.Sprintf("rejects-%06d.jsonl", k) }

var partPattern = regexp.MustCompile(`^(?:part|rejects)-(\d{6})\.`)

// dropUncommitted removes part files a killed run wrote after its last checkpoint.
func dropUncommitted(dir string, chunks int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		m := partPattern.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if k, _ := strconv.Atoi(m[1]); k >= chunks {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
