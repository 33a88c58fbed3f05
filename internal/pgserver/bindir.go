package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// debianBinGlob is where Debian and Ubuntu install the server binaries, one directory per major
// version; they are not on PATH there.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// FindBinDir returns the directory holding the PostgreSQL server binaries (initdb and postgres).
// It tries, in order: the directory of pg_ctl or postgres found on PATH (symlinks resolved, so a
// link in /usr/local/bin leads to the real installation), the output of `pg_config --bindir`, and
// the newest /usr/lib/postgresql/*/bin. A candidate counts only if it holds both initdb and
// postgres; the error lists every candidate tried and why it was rejected.
func FindBinDir() (string, error) {
	var tried []string
	try := func(what, dir string) bool {
		if err := checkBinDir(dir); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s): %v", what, dir, err))
			return false
		}
		return true
	}

	for _, name := range []string{"pg_ctl", "postgres"} {
		p, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s on PATH: not found", name))
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); try(name+" on PATH", dir) {
			return dir, nil
		}
	}

	if p, err := exec.LookPath("pg_config"); err != nil {
		tried = append(tried, "pg_config on PATH: not found")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, p, "--bindir").Output()
		cancel()
		if err != nil {
			tried = append(tried, fmt.Sprintf("pg_config --bindir: %v", err))
		} else if dir := strings.TrimSpace(string(out)); try("pg_config --bindir", dir) {
			return dir, nil
		}
	}

	dirs, _ := filepath.Glob(debianBinGlob)
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, dir := range dirs {
		if try(debianBinGlob, dir) {
			return dir, nil
		}
	}
	if len(dirs) == 0 {
		tried = append(tried, debianBinGlob+": no match")
	}
	return "", fmt.Errorf("pgserver: PostgreSQL server binaries (initdb, postgres) not found; tried: %s",
		strings.Join(tried, "; "))
}

// majorOf extracts the version from /usr/lib/postgresql/<version>/bin so that 15 sorts above 9.6.
func majorOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func checkBinDir(dir string) error {
	if dir == "" {
		return errors.New("empty")
	}
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("no %s", name)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", name)
		}
	}
	return nil
}
