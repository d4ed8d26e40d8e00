// Package trees serves gradient-boosted tree models in pure Go through
// github.com/dmitryikh/leaves: XGBoost JSON models (model.json) and LightGBM text
// models (model.txt). It imports no other Ferry package but internal/tensor;
// cmd/ferry adapts it to the repository's backend table.
//
// # Models
//
// [Load] tells the formats apart by content. A LightGBM file goes to leaves as it
// is (a v4 file is shown to leaves as v3: the tree sections leaves reads did not
// change; linear trees, which leaves would silently ignore, are refused). leaves
// reads only XGBoost's legacy binary format, so an XGBoost JSON model is checked
// and rewritten in that format in memory. Two details of that rewrite keep
// predictions equal to XGBoost's: XGBoost sends a row left when x < threshold,
// leaves when x <= threshold, so each threshold is replaced by the next float32
// below it; and XGBoost compares float32 features, so FP64 inputs are rounded to
// float32 first (LightGBM compares float64, so its inputs are used as they are).
// Missing values are NaN and follow each split's default direction.
//
// leaves returns raw margins; [Model.Predict] adds XGBoost's base score (turned
// into a margin as XGBoost does: logit for logistic objectives, log for Poisson,
// gamma, Tweedie and survival) and applies the objective's link: sigmoid for binary
// objectives, softmax class probabilities for multiclass ones (XGBoost's
// multi:softmax included: the output is a fixed-width row of probabilities, whose
// arg-max is the class), exp for count and survival objectives. With
// [Options.OutputMargin] the margins are returned instead.
//
// # Tensors
//
// Every model has one input, input__0, [rows, features] FP32 (FP64 accepted when
// the config says so), and one output, output__0, [rows, outputs] FP32 (or FP64):
// one column for regression and binary models, one per class for multiclass
// models. The names are those of Triton's FIL backend. An [Instance] predicts a
// whole batch in one leaves call (PredictDense), on [Options.Threads] goroutines.
package trees
