package explain

import "fmt"

// pathElem is one feature on the unique path TreeSHAP keeps from the root: the
// fraction of "zero" paths (feature not in the coalition: both branches, weighted by
// cover) and "one" paths (feature in it: x's branch only) that flow through, and the
// permutation weight of the path's subsets of each size.
type pathElem struct {
	feature int
	zero    float64
	one     float64
	weight  float64
}

// shapState is the scratch of one row's explanation.
type shapState struct {
	t    *Tree
	x    []float64
	phi  []float64 // this tree's output's attributions, [Features]
	path []pathElem
}

// SHAP adds the TreeSHAP attributions of row x to phi ([Outputs][Features], row-major)
// and returns the margins of x. The attributions of each output add up to its margin
// minus its ExpectedValue (local accuracy), up to rounding.
func (e *Ensemble) SHAP(x, phi []float64) ([]float64, error) {
	if len(x) != e.Features {
		return nil, fmt.Errorf("row has %d features, the ensemble %d", len(x), e.Features)
	}
	if len(phi) != e.Outputs*e.Features {
		return nil, fmt.Errorf("attribution buffer of %d for %d outputs × %d features", len(phi), e.Outputs, e.Features)
	}
	d := e.depth + 2
	st := shapState{x: x, path: make([]pathElem, d*(d+1)/2)}
	for i := range e.Trees {
		st.t = &e.Trees[i]
		o := st.t.Output
		st.phi = phi[o*e.Features : (o+1)*e.Features]
		st.recurse(0, 0, 0, 1, 1, -1)
	}
	return e.Predict(x), nil
}

// recurse is Algorithm 2's RECURSE at node j: path holds the parent's unique path
// (depth elements from offset) and is extended by the feature that split into j.
func (st *shapState) recurse(j, offset, depth int, zero, one float64, feature int) {
	parent := st.path[offset : offset+depth]
	next := offset + depth
	path := st.path[next : next+depth+1]
	copy(path, parent)
	extend(path, depth, zero, one, feature)
	n := &st.t.Nodes[j]
	if n.Leaf() {
		for i := 1; i <= depth; i++ {
			w := unwoundSum(path, depth, i)
			el := &path[i]
			st.phi[el.feature] += w * (el.one - el.zero) * n.Value
		}
		return
	}
	hot, cold := n.Right, n.Left
	if n.goesLeft(st.x[n.Feature]) {
		hot, cold = n.Left, n.Right
	}
	hc, cc := st.t.Nodes[hot].Cover, st.t.Nodes[cold].Cover
	inZero, inOne := 1.0, 1.0
	for k := 1; k <= depth; k++ {
		if path[k].feature == n.Feature { // split on before: undo it, redo it here
			inZero, inOne = path[k].zero, path[k].one
			unwind(path, depth, k)
			depth--
			break
		}
	}
	st.recurse(hot, next, depth+1, hc/(hc+cc)*inZero, inOne, n.Feature)
	st.recurse(cold, next, depth+1, cc/(hc+cc)*inZero, 0, n.Feature)
}

// extend is Algorithm 2's EXTEND: path[depth] becomes the new feature and the
// permutation weights grow by one subset size.
func extend(path []pathElem, depth int, zero, one float64, feature int) {
	path[depth] = pathElem{feature: feature, zero: zero, one: one}
	if depth == 0 {
		path[0].weight = 1
	}
	inv := recip[depth+1]
	for i := depth - 1; i >= 0; i-- {
		path[i+1].weight += one * path[i].weight * float64(i+1) * inv
		path[i].weight = zero * path[i].weight * float64(depth-i) * inv
	}
}

// unwind is Algorithm 2's UNWIND: it removes path[k] and undoes its extension of the
// weights; the path then has depth elements (indexes 0..depth-1).
func unwind(path []pathElem, depth, k int) {
	one, zero := path[k].one, path[k].zero
	next := path[depth].weight
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := path[i].weight
			path[i].weight = next * float64(depth+1) / (float64(i+1) * one)
			next = tmp - path[i].weight*zero*float64(depth-i)/float64(depth+1)
		} else {
			path[i].weight = path[i].weight * float64(depth+1) / (zero * float64(depth-i))
		}
	}
	for i := k; i < depth; i++ {
		path[i].feature, path[i].zero, path[i].one = path[i+1].feature, path[i+1].zero, path[i+1].one
	}
}

// recip[k] is 1/k: unwoundSum, the innermost loop, multiplies instead of dividing.
var recip = func() (r [MaxDepth + 3]float64) {
	for k := 1; k < len(r); k++ {
		r[k] = 1 / float64(k)
	}
	return r
}()

// unwoundSum is the total permutation weight the path would have with path[k]
// unwound, without changing the path.
func unwoundSum(path []pathElem, depth, k int) float64 {
	one, zero := path[k].one, path[k].zero
	next := path[depth].weight
	total := 0.0
	if one != 0 {
		invOne := 1 / one
		for i := depth - 1; i >= 0; i-- {
			tmp := next * invOne * recip[i+1]
			total += tmp
			next = path[i].weight - tmp*zero*float64(depth-i)
		}
	} else {
		invZero := 1 / zero
		for i := depth - 1; i >= 0; i-- {
			total += path[i].weight * invZero * recip[depth-i]
		}
	}
	return total * float64(depth+1)
}
