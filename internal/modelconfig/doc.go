// Package modelconfig reads, completes, checks and prints Triton model
// configurations (config.pbtxt), so that an existing Triton model repository
// loads in Ferry unchanged.
//
// The schema is Triton's model_config.proto, generated into internal/inference;
// this package never parses by hand. The usual path for one model directory
// is:
//
//	cfg, err := modelconfig.Parse(text)                  // strict prototext
//	explicit := modelconfig.HasMaxBatchSize(text)        // proto3 cannot tell 0 from unset
//	err = modelconfig.AutoComplete(cfg, io, explicit)    // fill from the model file
//	modelconfig.SetDefaults(cfg, dirName)                // Triton's defaults
//	err = modelconfig.Validate(cfg, dirName)             // every field error at once
//	load, missing := modelconfig.Versions(cfg.GetVersionPolicy(), onDisk)
//
// ParseJSON and MarshalJSON handle the JSON form that Triton's repository
// extension accepts and its config endpoints print (int64 fields as numbers,
// enums as names). The package is a leaf: it imports only internal/inference and
// internal/tensor.
package modelconfig
