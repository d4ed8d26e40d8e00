package grpcdeflate

import (
	"compress/zlib"
	"io"
	"sync"

	"google.golang.org/grpc/encoding"
)

// Name is the grpc-encoding value.
const Name = "deflate"

func init() {
	encoding.RegisterCompressor(&compressor{})
}

type compressor struct {
	writers, readers sync.Pool
}

func (*compressor) Name() string { return Name }

// Compress returns a writer that compresses into w; closing it finishes the message
// and returns the writer to the pool.
func (c *compressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if z, ok := c.writers.Get().(*writer); ok {
		z.Reset(w)
		return z, nil
	}
	return &writer{Writer: zlib.NewWriter(w), pool: &c.writers}, nil
}

type writer struct {
	*zlib.Writer
	pool *sync.Pool
}

func (z *writer) Close() error {
	defer z.pool.Put(z)
	return z.Writer.Close()
}

// Decompress returns a reader of r's decompressed bytes; gRPC reads it to the end, and
// bounds what it reads by its maximum message size.
func (c *compressor) Decompress(r io.Reader) (io.Reader, error) {
	z, ok := c.readers.Get().(io.ReadCloser)
	if !ok {
		var err error
		if z, err = zlib.NewReader(r); err != nil {
			return nil, err
		}
	} else if err := z.(zlib.Resetter).Reset(r, nil); err != nil {
		c.readers.Put(z)
		return nil, err
	}
	return &reader{ReadCloser: z, pool: &c.readers}, nil
}

// reader returns its zlib reader to the pool at the end of the stream.
type reader struct {
	io.ReadCloser
	pool *sync.Pool
}

func (z *reader) Read(p []byte) (int, error) {
	n, err := z.ReadCloser.Read(p)
	if err == io.EOF {
		z.pool.Put(z.ReadCloser)
		z.ReadCloser = eof{}
	}
	return n, err
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
func (eof) Close() error             { return nil }
