// Package quality joins ground truth to predictions: labels posted hours after the
// requests (the feedback API) are kept durably, matched by request id to what the
// inference log recorded, and scored per model, version and time window: accuracy,
// precision, recall, F1 and ROC AUC for classifiers, MAE and RMSE for regressors. The
// latest window's values feed alerts and the ferry_model_quality gauge.
//
// The package never sits on the request path: it reads predictions through the
// Predictions interface, which the integrator adapts from the inference log.
package quality
