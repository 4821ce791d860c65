package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
)

// bbolt's file layout, as far as its own consistency check reads it
// (go.etcd.io/bbolt internal/common). bbolt writes in the machine's byte
// order.
const (
	pageHeaderLen  = 16 // page id (8), flags (2), count (2), overflow (4)
	pageElementLen = 16 // branch: pos, key size (4 each), child page (8); leaf: flags, pos, key size, value size (4 each)
	bucketHeadLen  = 16 // root page (8), sequence (8); an inline bucket's page follows when root is 0
	metaLen        = 64 // magic, version, page size, flags (4 each), root bucket (16), free list, high water mark, txid, checksum (8 each)
	metaMagic      = 0xED0CDAED

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	noFreelist = ^uint64(0)
	maxDepth   = 64 // far deeper than any B+tree of this store
)

var ne = binary.NativeEndian

// checkLayout validates, from the file's bytes, every structure that bbolt's
// consistency check (Tx.Check) reads without validating it first: the meta
// pages, the free list, and every page of the bucket tree (its header, its
// element offsets and sizes, the child pages it names, the bucket headers
// and inline buckets in its leaves). bbolt runs that check in a goroutine of
// its own, where a damaged page makes it panic or read past its memory map
// and kill the process, or loop for ever; after checkLayout it only finds
// what is inconsistent.
func checkLayout(file []byte) error {
	if len(file) < 2*pageHeaderLen+metaLen {
		return errors.New("too short for a store")
	}
	ps := int(ne.Uint32(file[pageHeaderLen+8:]))
	if ps < 1024 || ps > 1<<16 || ps&(ps-1) != 0 || len(file) < 2*ps {
		return fmt.Errorf("page size %d", ps)
	}
	// The current meta, chosen as bbolt chooses it: the valid one with the
	// higher transaction id.
	var m []byte
	for id := range 2 {
		p := file[id*ps:]
		if ne.Uint64(p) != uint64(id) || ne.Uint16(p[8:]) != metaPageFlag {
			return fmt.Errorf("meta page %d has a damaged header", id)
		}
		c := p[pageHeaderLen : pageHeaderLen+metaLen]
		h := fnv.New64a()
		h.Write(c[:56])
		if ne.Uint32(c) != metaMagic || h.Sum64() != ne.Uint64(c[56:]) || int(ne.Uint32(c[8:])) != ps {
			continue
		}
		if m == nil || ne.Uint64(c[48:]) > ne.Uint64(m[48:]) {
			m = c
		}
	}
	if m == nil {
		return errors.New("no valid meta page")
	}
	l := layout{file: file, ps: ps, highWater: ne.Uint64(m[40:]), seen: map[uint64]bool{}}
	if l.highWater < 3 || l.highWater > uint64(len(file)/ps) {
		return fmt.Errorf("high water mark %d in a file of %d pages", l.highWater, len(file)/ps)
	}
	if fl := ne.Uint64(m[32:]); fl != noFreelist {
		if err := l.freelist(fl); err != nil {
			return err
		}
	}
	return l.tree(ne.Uint64(m[16:]), 0)
}

// layout walks the pages of one store file.
type layout struct {
	file      []byte
	ps        int
	highWater uint64          // pages in use: ids below it
	seen      map[uint64]bool // pages already walked: a second reference is damage
}

// page returns page id with its overflow pages, after checking its header.
func (l *layout) page(id uint64, flags uint16, what string) ([]byte, error) {
	if id < 2 || id >= l.highWater {
		return nil, fmt.Errorf("%s page %d is outside the file's %d pages", what, id, l.highWater)
	}
	if l.seen[id] {
		return nil, fmt.Errorf("%s page %d is referenced twice", what, id)
	}
	l.seen[id] = true
	start := int(id) * l.ps
	h := l.file[start : start+pageHeaderLen]
	if ne.Uint64(h) != id {
		return nil, fmt.Errorf("%s page %d has a damaged header", what, id)
	}
	if flags != 0 && ne.Uint16(h[8:]) != flags {
		return nil, fmt.Errorf("%s page %d has flags %#x", what, id, ne.Uint16(h[8:]))
	}
	over := uint64(ne.Uint32(h[12:]))
	if id+over >= l.highWater {
		return nil, fmt.Errorf("%s page %d runs past the last page", what, id)
	}
	for o := id + 1; o <= id+over; o++ {
		if l.seen[o] {
			return nil, fmt.Errorf("%s page %d overlaps page %d", what, id, o)
		}
		l.seen[o] = true
	}
	return l.file[start : start+(1+int(over))*l.ps], nil
}

// freelist checks the free-list page: its ids are pages of the file.
func (l *layout) freelist(id uint64) error {
	p, err := l.page(id, freelistPageFlag, "free-list")
	if err != nil {
		return err
	}
	n, ids := uint64(ne.Uint16(p[10:])), p[pageHeaderLen:]
	if n == 0xFFFF { // the real count is the first id
		if len(ids) < 8 {
			return fmt.Errorf("free-list page %d is damaged", id)
		}
		n, ids = ne.Uint64(ids), ids[8:]
	}
	if n > uint64(len(ids)/8) {
		return fmt.Errorf("free-list page %d counts %d pages", id, n)
	}
	for i := range n {
		if f := ne.Uint64(ids[8*i:]); f < 2 || f >= l.highWater {
			return fmt.Errorf("free-list page %d frees page %d", id, f)
		}
	}
	return nil
}

// tree checks the bucket tree rooted at page id.
func (l *layout) tree(id uint64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("page %d: the tree is deeper than %d", id, maxDepth)
	}
	p, err := l.page(id, 0, "tree")
	if err != nil {
		return err
	}
	return l.node(p, id, depth)
}

// node checks one branch or leaf page (p, which may be an inline bucket's),
// then the pages and buckets it refers to.
func (l *layout) node(p []byte, id uint64, depth int) error {
	if len(p) < pageHeaderLen {
		return fmt.Errorf("page %d is cut short", id)
	}
	flags, n := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("page %d has flags %#x", id, flags)
	}
	if flags == branchPageFlag && n == 0 {
		return fmt.Errorf("branch page %d is empty", id)
	}
	if pageHeaderLen+n*pageElementLen > len(p) {
		return fmt.Errorf("page %d counts %d elements", id, n)
	}
	for i := range n {
		off := pageHeaderLen + i*pageElementLen
		e := p[off : off+pageElementLen]
		if flags == branchPageFlag {
			pos, ksize := uint64(ne.Uint32(e)), uint64(ne.Uint32(e[4:]))
			if uint64(off)+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("page %d element %d runs past the page", id, i)
			}
			if err := l.tree(ne.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		eflags, pos, ksize, vsize := ne.Uint32(e), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if uint64(off)+pos+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("page %d element %d runs past the page", id, i)
		}
		if eflags&bucketLeafFlag == 0 {
			continue
		}
		v := p[uint64(off)+pos+ksize : uint64(off)+pos+ksize+vsize]
		if len(v) < bucketHeadLen {
			return fmt.Errorf("page %d element %d: a bucket of %d bytes", id, i, len(v))
		}
		if root := ne.Uint64(v); root != 0 {
			if err := l.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		if depth+1 > maxDepth {
			return fmt.Errorf("page %d: the tree is deeper than %d", id, maxDepth)
		}
		if err := l.node(v[bucketHeadLen:], id, depth+1); err != nil { // an inline bucket
			return err
		}
	}
	return nil
}
