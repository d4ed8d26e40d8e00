// Package lane turns rows and messages into core requests and answers back into rows,
// for the lanes that are not a network transport: batch jobs over files and streaming
// consumers. A lane is a client of core like REST and gRPC: it reads the model's
// metadata and config through core.API and calls Infer, never a scheduler or a backend.
package lane
