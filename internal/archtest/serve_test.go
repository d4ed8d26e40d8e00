package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// serving lists, per import path, the names a transport must not use outside its tests:
// cmd/ferry builds the one HTTP root, the listeners, the http.Server and the grpc.Server,
// and transports mount their routes and register their services on them (DESIGN.md).
// A name ending in "*" bans every name with that prefix.
var serving = map[string][]string{
	"net":                    {"Listen*", "FileListener"},
	"net/http":               {"Server", "ListenAndServe*", "Serve", "ServeTLS", "NewServeMux"},
	"net/http/httptest":      {"*"},
	"google.golang.org/grpc": {"NewServer"},
}

// TestTransportsNeverServe: no package under internal/transport builds a listener, a
// server or a mux of its own (a source scan of its non-test files).
func TestTransportsNeverServe(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "internal", "transport")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, use := range servingUses(fset, f) {
			t.Errorf("%s; transports mount on cmd/ferry's root and register on its gRPC server", use)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServingUsesFindsEveryForm keeps the scan honest: each banned form, under any import
// name, is found.
func TestServingUsesFindsEveryForm(t *testing.T) {
	const src = `package p
import (
	"net"
	nh "net/http"
	"google.golang.org/grpc"
)
var _ = net.JoinHostPort // allowed
func f() {
	ln, _ := net.Listen("tcp", ":0")
	srv := &nh.Server{}
	_ = nh.NewServeMux()
	_ = grpc.NewServer()
	_, _ = ln, srv
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := servingUses(fset, f)
	want := []string{"p.go:9:11: net.Listen", "p.go:10:10: net/http.Server", "p.go:11:6: net/http.NewServeMux", "p.go:12:6: google.golang.org/grpc.NewServer"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("servingUses found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// servingUses returns "file:line:col: importpath.Name" for each banned name f uses.
func servingUses(fset *token.FileSet, f *ast.File) []string {
	imports := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = path
	}
	var uses []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		path := imports[pkg.Name]
		if isBanned(serving[path], sel.Sel.Name) {
			uses = append(uses, fset.Position(sel.Pos()).String()+": "+path+"."+sel.Sel.Name)
		}
		return true
	})
	return uses
}

func isBanned(names []string, name string) bool {
	for _, b := range names {
		if b == name || strings.HasSuffix(b, "*") && strings.HasPrefix(name, strings.TrimSuffix(b, "*")) {
			return true
		}
	}
	return false
}
