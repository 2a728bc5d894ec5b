package mariadbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// mariadb-install-db costs a second or more of CPU per server (several on a
// busy machine); copying an initialized datadir costs a few tens of
// milliseconds. So the first Start on a machine initializes a template
// datadir in os.TempDir() (ferry-mariadbtest-template-<key>, about 65 MB, its
// key derived from the MariaDB binaries and the init options) and every
// server starts from a copy. Set MARIADBTEST_NO_TEMPLATE=1 to run
// mariadb-install-db for every server instead.

var templateMu sync.Mutex // one template build at a time in this process

// initDataDir fills s.DataDir with a freshly initialized datadir, from the
// template when possible.
func (s *Server) initDataDir(ctx context.Context) error {
	if os.Getenv("MARIADBTEST_NO_TEMPLATE") == "" {
		started := time.Now()
		tmpl, err := templateDataDir(ctx, s.opts.Logf)
		if err == nil {
			if err = copyDir(tmpl, s.DataDir); err == nil {
				s.opts.Logf("mariadbtest: datadir %s copied from template in %v", s.DataDir, time.Since(started).Round(time.Millisecond))
				return nil
			}
		}
		if ctx.Err() != nil {
			return err
		}
		s.opts.Logf("mariadbtest: no template datadir (%v); running %s", err, binInstall)
		if err := os.RemoveAll(s.DataDir); err != nil {
			return err
		}
	}
	return installDB(ctx, s.DataDir, s.opts.Logf)
}

// templateDataDir returns an initialized datadir to copy, building it once
// per machine and MariaDB version. Concurrent builders (other test
// processes) race harmlessly: each builds privately and renames into place;
// the first rename wins.
func templateDataDir(ctx context.Context, logf func(string, ...any)) (string, error) {
	key, err := templateKey()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "ferry-mariadbtest-template-"+key)
	data := filepath.Join(dir, "data")
	ready := func() bool {
		_, err := os.Stat(filepath.Join(data, "mysql", "user.frm"))
		return err == nil
	}
	if ready() {
		return data, nil
	}
	templateMu.Lock()
	defer templateMu.Unlock()
	if ready() {
		return data, nil
	}
	build, err := os.MkdirTemp(os.TempDir(), "ferry-mariadbtest-template-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build) // gone after a successful rename anyway
	if err := installDB(ctx, filepath.Join(build, "data"), logf); err != nil {
		return "", err
	}
	if err := os.Rename(build, dir); err != nil {
		if ready() { // another process won the race
			return data, nil
		}
		// A broken leftover: replace it.
		_ = os.RemoveAll(dir)
		if err := os.Rename(build, dir); err != nil {
			return "", fmt.Errorf("install template datadir: %w", err)
		}
	}
	logf("mariadbtest: template datadir %s ready", dir)
	return data, nil
}

// templateKey identifies the binaries and init options a template was made
// with, so an upgrade of MariaDB or of this package gets a new template.
func templateKey() (string, error) {
	h := sha256.New()
	for _, b := range []string{binServer, binInstall} {
		p, err := FindBinary(b)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
	}
	fmt.Fprintf(h, "uid %d\n%s\n", os.Getuid(), strings.Join(installArgs(""), " "))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// copyDir copies the regular files and directories of src into dst, which
// must not exist.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return errors.New("unexpected file in template: " + path)
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range on Linux
		out.Close()
		return err
	}
	return out.Close()
}
