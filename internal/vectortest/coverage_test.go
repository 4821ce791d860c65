package vectortest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryVectorFileIsRead: every JSON file of ../shared/vectors (beside the
// repository root) is named by some test of the repository, so a vector file
// added there cannot go unreproduced unnoticed.
func TestEveryVectorFileIsRead(t *testing.T) {
	dir := Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in %s: %v", dir, err)
	}
	repo := ""
	for d, _ := os.Getwd(); ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			repo = d
			break
		}
		if filepath.Dir(d) == d {
			t.Fatal("no go.mod above the working directory")
		}
	}
	var tests strings.Builder
	err = filepath.WalkDir(repo, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".")) && path != repo {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") && path != filepath.Join(repo, "internal", "vectortest", "coverage_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			tests.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := filepath.Base(f); !strings.Contains(tests.String(), `"`+name+`"`) {
			t.Errorf("no test reads shared/vectors/%s", name)
		}
	}
}
