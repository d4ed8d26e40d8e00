package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// finish assembles the committed parts into the output and rejects files and puts them
// in place: written beside their names (in the work folder for s3://), the checkpoint
// marked done, then renamed or uploaded, then the work folder removed. A job killed in
// between finds Done and repeats only the last steps.
func (j *job) finish(ctx context.Context, cp *checkpoint) error {
	outTmp, rejTmp := j.staged(j.output, "output"+j.out.ext()), j.staged(j.rejects, "rejects.jsonl")
	if !cp.Done {
		if err := writeFile(outTmp, func(f *os.File) error { return j.assemble(f, cp.Chunks) }); err != nil {
			return fmt.Errorf("assembling %s: %w", j.output, err)
		}
		if err := writeFile(rejTmp, func(f *os.File) error { return j.concat(f, cp.Chunks, rejectsName) }); err != nil {
			return fmt.Errorf("assembling %s: %w", j.rejects, err)
		}
		cp.Done = true
		if err := cp.save(j.dir); err != nil {
			return err
		}
	}
	if err := j.place(ctx, rejTmp, j.rejects); err != nil {
		return err
	}
	if err := j.place(ctx, outTmp, j.output); err != nil {
		return err
	}
	return os.RemoveAll(j.dir)
}

// staged is where a final file is assembled: beside it, so a rename puts it in place,
// or in the work folder when it goes to S3.
func (j *job) staged(dst, name string) string {
	if isS3(dst) {
		return filepath.Join(j.dir, name)
	}
	return dst + ".ferry-tmp"
}

// place renames or uploads an assembled file; a rename already done is no error.
func (j *job) place(ctx context.Context, tmp, dst string) error {
	if isS3(dst) {
		return j.store.upload(ctx, tmp, dst)
	}
	err := os.Rename(tmp, dst)
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat(dst); statErr == nil {
			return nil
		}
	}
	return err
}

// assemble writes the output file from the part files: concatenated for text (a CSV
// header first), row group by row group for Parquet.
func (j *job) assemble(w io.Writer, chunks int) error {
	switch j.out {
	case fmtCSV:
		if _, err := w.Write(csvHeader(j.cols)); err != nil {
			return err
		}
	case fmtParquet:
		return j.mergeParquet(w, chunks)
	}
	return j.concat(w, chunks, func(k int) string { return partName(k, j.out.ext()) })
}

func (j *job) concat(w io.Writer, chunks int, name func(int) string) error {
	for k := range chunks {
		f, err := os.Open(filepath.Join(j.dir, name(k)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (j *job) mergeParquet(w io.Writer, chunks int) error {
	pw := parquet.NewWriter(w, outSchema(j.cols), parquet.Compression(&parquet.Snappy))
	for k := range chunks {
		if err := copyRowGroups(pw, filepath.Join(j.dir, partName(k, ".parquet"))); err != nil {
			return err
		}
	}
	return pw.Close()
}

func copyRowGroups(pw *parquet.Writer, path string) error {
	f, size, err := openSized(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := parquet.OpenFile(f, size)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, rg := range pf.RowGroups() {
		if rg.NumRows() == 0 {
			continue
		}
		if _, err := pw.WriteRowGroup(rg); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}
