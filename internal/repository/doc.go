// Package repository turns a Triton-style model repository on disk into loaded model
// versions: it discovers models and numeric version folders, parses and completes each
// config, applies the version policy, opens backend instances behind a scheduler, and
// hands them out as reference-counted leases. A version being replaced stops taking new
// leases, finishes the requests holding one, and only then closes. Control modes:
// none (load everything at start), explicit (load on request), poll (rescan) and
// on-demand (load on a model's first request, unload least recently used idle models
// under a memory budget measured at load, and models left idle).
//
// Where things go: which versions exist and are loaded, from where (a folder, an object
// store), and their lifecycle belong here; a model registry with aliases and stages will
// sit beside it, feeding the versions it names. How a version runs is its backend's and
// its scheduler's business.
package repository
