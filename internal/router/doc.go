// Package router makes routing decisions: which version of a model serves a request
// that did not name one (weighted canary, sticky A/B, header and parameter matches),
// which version also gets a shadow copy, and what an alias in a request's version means.
//
// It is a pure decision, between core and the scheduler (DESIGN.md): it reads a
// request's attributes through Attrs and returns a Decision; core carries the decision
// out, sends the shadow copy and records Decision.Route in its tap. It imports nothing
// of Ferry's, so the registry that stores policies and the rollout controller that
// changes their weights depend on it, not the other way round.
//
// Policies live in a Table, read lock-free on every request and replaced whole: a
// rollout's weight change is one atomic swap, so no reader sees weights mid-change.
//
// How core uses it, per request:
//
//	p := table.Get(model)
//	if req.Version != "" { // pinned: a number or an alias, never split
//		v, ok := p.Resolve(req.Version) // !ok: 404 naming the alias
//	} else {
//		d := p.Decide(attrs) // d.Version "" (RouteDefault): the model's version policy
//	}
package router
