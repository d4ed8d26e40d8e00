package trees

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// linkKind is how a row's raw margins become the model's output.
type linkKind int

const (
	identity    linkKind = iota
	sigmoid              // 1/(1+exp(-scale·x)), each output on its own
	softmax              // probabilities over the row
	exponential          // exp(x): Poisson, gamma, Tweedie, survival
	step                 // x > 0 ? 1 : 0 (XGBoost binary:hinge)
	softplus             // log(1+exp(x)) (LightGBM cross_entropy_lambda)
	square               // sign(x)·x² (LightGBM regression with sqrt)
)

// link is the inverse link function of an objective.
type link struct {
	kind  linkKind
	scale float64 // sigmoid only
}

func (l link) apply(row []float64) {
	switch l.kind {
	case sigmoid:
		for i, x := range row {
			row[i] = 1 / (1 + math.Exp(-l.scale*x))
		}
	case softmax:
		top := math.Inf(-1)
		for _, x := range row {
			top = max(top, x)
		}
		sum := 0.0
		for i, x := range row {
			row[i] = math.Exp(x - top) // shifted by the maximum so no term overflows
			sum += row[i]
		}
		for i := range row {
			row[i] /= sum
		}
	case exponential:
		for i, x := range row {
			row[i] = math.Exp(x)
		}
	case step:
		for i, x := range row {
			row[i] = 0
			if x > 0 {
				row[i] = 1
			}
		}
	case softplus:
		for i, x := range row {
			row[i] = math.Log1p(math.Exp(x))
		}
	case square:
		for i, x := range row {
			row[i] = math.Copysign(x*x, x)
		}
	}
}

// xgbObjective maps an XGBoost objective to its output link and to how its base_score
// (stored in output space, as the user set it) becomes a margin, as XGBoost's
// PredTransform and ProbToMargin do. multi:softmax returns class probabilities here,
// like multi:softprob, rather than XGBoost's arg-max class index: the V2 output is a
// fixed-width FP32 row, and the class is its arg-max.
func xgbObjective(name string) (link, func(float64) (float64, error), error) {
	ident := func(b float64) (float64, error) { return b, nil }
	logit := func(b float64) (float64, error) {
		if b <= 0 || b >= 1 {
			return 0, fmt.Errorf("base_score %v must be in (0, 1) for objective %s", b, name)
		}
		return -math.Log(1/b - 1), nil
	}
	logf := func(b float64) (float64, error) {
		if b <= 0 {
			return 0, fmt.Errorf("base_score %v must be > 0 for objective %s", b, name)
		}
		return math.Log(b), nil
	}
	switch name {
	case "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror",
		"reg:absoluteerror", "reg:quantileerror", "rank:pairwise", "rank:ndcg", "rank:map":
		return link{kind: identity}, ident, nil
	case "binary:logistic", "reg:logistic":
		return link{kind: sigmoid, scale: 1}, logit, nil
	case "binary:logitraw":
		return link{kind: identity}, logit, nil
	case "binary:hinge":
		return link{kind: step}, ident, nil
	case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox", "survival:aft":
		return link{kind: exponential}, logf, nil
	case "multi:softprob", "multi:softmax":
		return link{kind: softmax}, ident, nil
	}
	return link{}, nil, fmt.Errorf("XGBoost objective %q is not supported (regression, binary, count, survival, ranking and multi:softprob/softmax objectives are)", name)
}

// lgbObjective maps a LightGBM objective line ("binary sigmoid:1", "multiclass
// num_class:3", "regression sqrt", ...) to its output link, as LightGBM's
// ConvertOutput does, and checks its num_class against the model's.
func lgbObjective(line string, classes int) (link, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return link{kind: identity}, nil // a custom objective: LightGBM writes none
	}
	params := map[string]string{}
	flags := map[string]bool{}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, ":"); ok {
			params[k] = v
		} else {
			flags[f] = true
		}
	}
	scale := 1.0
	if s, ok := params["sigmoid"]; ok {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return link{}, fmt.Errorf("objective %q: bad sigmoid %q", line, s)
		}
		scale = v
	}
	if s, ok := params["num_class"]; ok && s != strconv.Itoa(classes) {
		return link{}, fmt.Errorf("objective %q: num_class %s, but the model has %d", line, s, classes)
	}
	switch name := fields[0]; name {
	case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root", "root_mean_squared_error", "rmse",
		"regression_l1", "l1", "mean_absolute_error", "mae", "huber", "fair", "quantile", "mape",
		"mean_absolute_percentage_error", "lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart", "custom":
		if flags["sqrt"] {
			return link{kind: square}, nil
		}
		return link{kind: identity}, nil
	case "binary", "multiclassova", "multiclass_ova", "ova", "ovr":
		return link{kind: sigmoid, scale: scale}, nil
	case "cross_entropy", "xentropy":
		return link{kind: sigmoid, scale: 1}, nil
	case "cross_entropy_lambda", "xentlambda":
		return link{kind: softplus}, nil
	case "multiclass", "softmax":
		return link{kind: softmax}, nil
	case "poisson", "gamma", "tweedie":
		return link{kind: exponential}, nil
	default:
		return link{}, fmt.Errorf("LightGBM objective %q is not supported", name)
	}
}
