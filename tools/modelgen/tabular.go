package main

import "github.com/ferryml/ferry/tools/onnxgen"

// tabularSeed seeds the tabular example's weights.
const tabularSeed = 1

// tabularConfig serves onnxgen.Tabular, the example for explanations (docs/explain.md)
// and monitoring: one row of 6 standardized features (age, income, debt_ratio, tenure,
// late_payments, utilization) gives one probability, with dynamic batching so that an
// explanation's many coalition rows run in big batches.
const tabularConfig = `name: "tabular"
platform: "onnxruntime_onnx"
max_batch_size: 256
input [
  {
    name: "features"
    data_type: TYPE_FP32
    dims: [ 6 ]
  }
]
output [
  {
    name: "score"
    data_type: TYPE_FP32
    dims: [ 1 ]
  }
]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching {
  max_queue_delay_microseconds: 500
}
`

// tabularFiles are the tabular example's repository files.
func tabularFiles() map[string][]byte {
	return map[string][]byte{
		"tabular/config.pbtxt": []byte(tabularConfig),
		"tabular/1/model.onnx": onnxgen.Tabular(tabularSeed),
	}
}
