package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"
)

// ErrCorrupt means the state file exists but is not a usable store: empty,
// truncated, or with pages that do not form a valid tree. Ferry refuses it
// instead of starting over, which would silently forget every checkpoint
// and dead letter.
var ErrCorrupt = errors.New("state store is damaged")

// recoveryHint says how to get going again after ErrCorrupt.
const recoveryHint = "restore it from a backup, or move it aside and set each source's position with `ferry checkpoint set` (its dead letters are lost)"

// bbolt's on-disk format (go.etcd.io/bbolt/internal/common, format
// version 2). bbolt checks its own structure only in code that panics on a
// bad page, some of it in a goroutine nobody can recover, and reads pages
// through mmap, where a page past the end of a truncated file is a SIGBUS.
// So the file is checked here first, with plain reads and bounds checks,
// before bbolt maps it.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	elementSize     = 16 // branch and leaf elements are both 16 bytes
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
	inBucketSize    = 16
	metaChecksumEnd = pageHeaderSize + 56
	maxTreeDepth    = 64
)

// boltMeta is what checkFile needs from a meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64 // page of the root bucket
	hwm      uint64 // high water mark: pages in use are below it
	txid     uint64
}

func parseMeta(buf []byte) (boltMeta, error) {
	if len(buf) < metaChecksumEnd+8 {
		return boltMeta{}, errors.New("too short")
	}
	le := binary.LittleEndian
	if le.Uint32(buf[16:]) != boltMagic {
		return boltMeta{}, errors.New("bad magic number")
	}
	if v := le.Uint32(buf[20:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(buf[pageHeaderSize:metaChecksumEnd])
	if h.Sum64() != le.Uint64(buf[metaChecksumEnd:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	m := boltMeta{pageSize: le.Uint32(buf[24:]), root: le.Uint64(buf[32:]), hwm: le.Uint64(buf[56:]), txid: le.Uint64(buf[64:])}
	if m.pageSize < 512 || m.pageSize > 1<<20 {
		return boltMeta{}, fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// checkFile verifies the bbolt file at path the way bbolt would read it:
// a valid meta page, every page below the high water mark present, and a
// tree whose pages are in bounds, referenced once, of the right type, with
// elements inside their page and keys in order. A missing file is fine
// (Open creates it); everything else wrong wraps ErrCorrupt.
func checkFile(path string, lockTimeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open state store %s: %w", path, err)
	}
	defer f.Close()
	if err := lockShared(f, lockTimeout); err != nil {
		if errors.Is(err, ErrLocked) {
			return fmt.Errorf("open %s: %w (stop the other process or use another state.dir)", path, ErrLocked)
		}
		return fmt.Errorf("lock state store %s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat state store %s: %w", path, err)
	}
	if err := checkPages(f, info.Size()); err != nil {
		return fmt.Errorf("%w: %s %v; %s", ErrCorrupt, path, err, recoveryHint)
	}
	return nil
}

func checkPages(f io.ReaderAt, size int64) error {
	if size == 0 {
		return errors.New("is empty (0 bytes)")
	}
	meta, err := newestMeta(f, size)
	if err != nil {
		return err
	}
	if need := int64(meta.hwm) * int64(meta.pageSize); size < need {
		return fmt.Errorf("is truncated: %d bytes, its header says %d", size, need)
	}
	w := treeWalker{f: f, meta: meta, seen: map[uint64]bool{}}
	if err := w.bucket(meta.root, nil, 0); err != nil {
		return fmt.Errorf("is corrupted: %w", err)
	}
	return nil
}

// newestMeta returns the valid meta page with the highest transaction id;
// like bbolt, one damaged meta page (an interrupted commit) is tolerated.
func newestMeta(f io.ReaderAt, size int64) (boltMeta, error) {
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	m0, err0 := parseMeta(buf[:n])
	pageSize := int64(4096)
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	buf = make([]byte, pageSize)
	n, _ = f.ReadAt(buf, pageSize)
	m1, err1 := parseMeta(buf[:n])
	switch {
	case err0 != nil && err1 != nil:
		if size < 2*pageSize {
			return boltMeta{}, fmt.Errorf("is truncated (%d bytes) or not a state file", size)
		}
		return boltMeta{}, fmt.Errorf("is not a state file or is corrupted: meta page 0: %v, meta page 1: %v", err0, err1)
	case err1 != nil || (err0 == nil && m0.txid > m1.txid):
		return m0, nil
	default:
		return m1, nil
	}
}

// treeWalker reads pages of the tree with plain, bounds-checked reads.
type treeWalker struct {
	f    io.ReaderAt
	meta boltMeta
	seen map[uint64]bool
}

func (w *treeWalker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.meta.hwm {
		return nil, fmt.Errorf("page %d: out of bounds (high water mark %d)", id, w.meta.hwm)
	}
	ps := int64(w.meta.pageSize)
	buf := make([]byte, ps)
	if _, err := w.f.ReadAt(buf, int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(buf); got != id {
		return nil, fmt.Errorf("page %d: header names page %d", id, got)
	}
	overflow := uint64(le.Uint32(buf[12:]))
	if id+overflow >= w.meta.hwm {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high water mark", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("page %d: referenced twice", i)
		}
		w.seen[i] = true
	}
	if overflow > 0 {
		buf = append(buf, make([]byte, int64(overflow)*ps)...)
		if _, err := w.f.ReadAt(buf[ps:], (int64(id)+1)*ps); err != nil {
			return nil, fmt.Errorf("page %d: %w", id, err)
		}
	}
	return buf, nil
}

// bucket checks the tree of a bucket whose root is page id, or inline
// (id 0) with its leaf page in inline.
func (w *treeWalker) bucket(id uint64, inline []byte, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: buckets nested deeper than %d", id, maxTreeDepth)
	}
	if id == 0 {
		return w.node(inline, 0, nil, nil, depth)
	}
	buf, err := w.page(id)
	if err != nil {
		return err
	}
	return w.node(buf, id, nil, nil, depth)
}

// node checks one branch or leaf page (id 0: an inline bucket's page) and
// what hangs below it. Its keys must increase and lie in [lo, hi) (nil: no
// bound), the range its ancestors' keys give it: bbolt rebuilds the
// freelist at open by walking the tree with the same rule, and panics, in a
// goroutine of its own, where it does not hold.
func (w *treeWalker) node(buf []byte, id uint64, lo, hi []byte, depth int) error {
	if len(buf) < pageHeaderSize {
		return fmt.Errorf("page %d: shorter than its header", id)
	}
	le := binary.LittleEndian
	flags, count := le.Uint16(buf[8:]), int(le.Uint16(buf[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("page %d: invalid page type %#x", id, flags)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit in the page", id, count)
	}
	var prev []byte
	inRange := func(i int, key []byte) error {
		if (lo != nil && bytes.Compare(key, lo) < 0) || (hi != nil && bytes.Compare(key, hi) >= 0) ||
			(prev != nil && bytes.Compare(key, prev) <= 0) {
			return fmt.Errorf("page %d: key %d out of order", id, i)
		}
		prev = key
		return nil
	}
	for i := 0; i < count; i++ {
		at := pageHeaderSize + i*elementSize
		el := buf[at : at+elementSize]
		if flags == branchPageFlag {
			key, err := branchKey(buf, id, i)
			if err != nil {
				return err
			}
			if err := inRange(i, key); err != nil {
				return err
			}
			next := hi
			if i+1 < count {
				if next, err = branchKey(buf, id, i+1); err != nil {
					return err
				}
			}
			child := le.Uint64(el[8:])
			cbuf, err := w.page(child)
			if err != nil {
				return err
			}
			if err := w.node(cbuf, child, key, next, depth); err != nil {
				return err
			}
			continue
		}
		eflags, pos, ksize, vsize := le.Uint32(el), int(le.Uint32(el[4:])), int(le.Uint32(el[8:])), int(le.Uint32(el[12:]))
		end := at + pos + ksize + vsize
		if pos < 0 || end > len(buf) || end < at {
			return fmt.Errorf("page %d: element %d lies outside the page", id, i)
		}
		key := buf[at+pos : at+pos+ksize]
		if err := inRange(i, key); err != nil {
			return err
		}
		if eflags&bucketLeafFlag == 0 {
			if depth == 0 { // bbolt's root holds buckets only
				return fmt.Errorf("page %d: top-level key %q is not a bucket", id, key)
			}
			continue
		}
		val := buf[at+pos+ksize : end]
		if len(val) < inBucketSize {
			return fmt.Errorf("page %d: bucket %q has a short header", id, key)
		}
		if err := w.bucket(le.Uint64(val), val[inBucketSize:], depth+1); err != nil {
			return err
		}
	}
	return nil
}

// branchKey returns the key of element i of a branch page.
func branchKey(buf []byte, id uint64, i int) ([]byte, error) {
	le := binary.LittleEndian
	at := pageHeaderSize + i*elementSize
	pos, ksize := int(le.Uint32(buf[at:])), int(le.Uint32(buf[at+4:]))
	if ksize == 0 || at+pos+ksize > len(buf) || at+pos+ksize < at {
		return nil, fmt.Errorf("page %d: element %d lies outside the page", id, i)
	}
	return buf[at+pos : at+pos+ksize], nil
}
