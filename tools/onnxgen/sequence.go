package onnxgen

// AccumulatorWithControls returns the Accumulator with Triton's sequence control
// inputs, so a test can see what the sequence batcher sends: INT32 START, END and
// READY and UINT64 CORRID, all [batch, 1], beside INPUT and INPUT_STATE. Its outputs
// are OUTPUT and OUTPUT_STATE (INPUT + INPUT_STATE, as in Accumulator), CONTROLS =
// START + 2·END + 4·READY (INT32) and CORRID_OUT, a copy of CORRID.
func AccumulatorWithControls() []byte {
	dims := []Dim{Sym("batch"), Fixed(1)}
	return NewModel("accumulator_controls").
		Input("INPUT", Int32, dims...).
		Input("INPUT_STATE", Int32, dims...).
		Input("START", Int32, dims...).
		Input("END", Int32, dims...).
		Input("READY", Int32, dims...).
		Input("CORRID", Uint64, dims...).
		Node("Add", []string{"INPUT", "INPUT_STATE"}, []string{"OUTPUT"}).
		Node("Identity", []string{"OUTPUT"}, []string{"OUTPUT_STATE"}).
		// Doubling by adding a tensor to itself needs no constant initializer.
		Node("Add", []string{"END", "END"}, []string{"end2"}).
		Node("Add", []string{"READY", "READY"}, []string{"ready2"}).
		Node("Add", []string{"ready2", "ready2"}, []string{"ready4"}).
		Node("Add", []string{"START", "end2"}, []string{"start_end"}).
		Node("Add", []string{"start_end", "ready4"}, []string{"CONTROLS"}).
		Node("Identity", []string{"CORRID"}, []string{"CORRID_OUT"}).
		Output("OUTPUT", Int32, dims...).
		Output("OUTPUT_STATE", Int32, dims...).
		Output("CONTROLS", Int32, dims...).
		Output("CORRID_OUT", Uint64, dims...).
		Bytes()
}
