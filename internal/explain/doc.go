// Package explain computes Shapley-value attributions of model predictions: exact
// TreeSHAP for tree ensembles (Lundberg et al. 2018, "Consistent Individualized
// Feature Attribution for Tree Ensembles", Algorithm 2: path-dependent, weighting each
// split's branches by the training data that reached them, the node covers), and
// KernelSHAP (Lundberg and Lee 2017) for any model it can call on batches of rows.
//
// TreeSHAP explains an ensemble's raw margin (the sum of its trees and its bias),
// before any link (sigmoid, softmax, exp): attributions add up to the margin minus the
// ensemble's expected margin. KernelSHAP explains whatever the model function returns
// (for a served model, its outputs as the client sees them), against a background
// sample: attributions add up to f(x) minus the mean of f over the background.
//
// It is a leaf: it imports no other Ferry package, so the trees backend can describe
// its ensembles in these types and core can call both methods.
package explain
