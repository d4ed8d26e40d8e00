// Package objstore mirrors a model repository kept in an S3-compatible object store
// (s3://bucket/prefix) into a local cache folder, which the repository package then reads
// like any other folder.
//
// A sync lists the prefix, downloads only the objects whose size or ETag changed since
// the last sync, and checks every download against its size and the checksums the store
// reports (the ETag when it is an MD5, Content-MD5, x-amz-checksum-*) before renaming it
// into place. Updates are applied per model: if any object of a model is refused, none of
// that model's changes are applied, so the model keeps its previous good files. Files
// whose objects are gone are deleted.
package objstore
