package apperr_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryRefusalNamesARule reads the module's code: every error it makes for people, other
// than an internal one, names the rule it concerns (style: errors carry a code and the rule id).
// It finds apperr.New with an empty rule and apperr.Error literals without a Rule.
func TestEveryRefusalNamesARule(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "var" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inApperr := f.Name.Name == "apperr"
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if isApperr(n.Fun, "New", inApperr) && len(n.Args) >= 2 && !isInternal(n.Args[0], inApperr) {
					if lit, ok := n.Args[1].(*ast.BasicLit); ok && lit.Value == `""` {
						found = append(found, fset.Position(n.Pos()).String())
					}
				}
			case *ast.CompositeLit:
				if !isApperr(n.Type, "Error", inApperr) {
					return true
				}
				rule, internal := false, false
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key, _ := kv.Key.(*ast.Ident); {
					case key == nil:
					case key.Name == "Rule":
						rule = true
					case key.Name == "Code":
						internal = isInternal(kv.Value, inApperr)
					}
				}
				if !rule && !internal {
					found = append(found, fset.Position(n.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range found {
		rel, _ := filepath.Rel(root, at)
		t.Errorf("%s: an error for people without a rule id", rel)
	}
}

// isApperr reports whether e names apperr's name (qualified, or bare inside package apperr).
func isApperr(e ast.Expr, name string, inApperr bool) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		pkg, ok := e.X.(*ast.Ident)
		return ok && pkg.Name == "apperr" && e.Sel.Name == name
	case *ast.Ident:
		return inApperr && e.Name == name
	}
	return false
}

// isInternal reports whether e is the code Internal, whose errors people see only as
// "internal error".
func isInternal(e ast.Expr, inApperr bool) bool { return isApperr(e, "Internal", inApperr) }

// moduleRoot is the directory of go.mod above the test's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}
