// Package endpoint keeps what each endpoint serves consistent across the three places
// that hold it: the registry (aliases, the stored routing policy), the repository (the
// versions loaded) and the router's table (where requests go). Every change runs in
// the one order that loses no request: load the versions it needs (repository pins,
// returning once they are READY), persist it, publish it to the router, and only then
// let go of the versions nothing names any more (whose in-flight requests finish first,
// as a retired version's leases do).
//
// The management API calls it to move aliases and set routing policies, and the
// rollout controller to load candidates and move traffic (Manager implements the
// rollout package's Models and, through a three-line adapter in cmd/ferry, Traffic).
// Pushed versions come in here too: their artifact goes to the registry's managed
// store and is placed in the repository folder as the next version number.
//
// Where things go: a new kind of change to what an endpoint serves is a Manager method
// that follows change(); a new place versions come from goes beside push.go.
package endpoint
