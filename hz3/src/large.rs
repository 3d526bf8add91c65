//! Large objects (above `SMALL_MAX`) and alignments no size class provides, carved from a cache of
//! free extents.
//!
//! A large block is a whole number of 64 KiB runs starting on a run boundary, so its first run's
//! page-map descriptor is its own and records its start and length (tag `KIND_LARGE`). Freed blocks
//! become free extents kept in size bins (best fit; split on reuse, coalesced with free neighbours
//! on release), either dirty (pages still committed) or clean (returned to the kernel, reading back
//! as zeroes). Dirty extents go back to the kernel by decay (`decay`) or when they pass
//! `DIRTY_MAX`; clean ones keep their address space for reuse and are unmapped only when a mapping
//! fails. The cache's metadata lives in the descriptors of each free extent's head and tail runs
//! (tag `KIND_FREE_EXTENT`): nothing is allocated, and the descriptor of a run is `KIND_FREE_EXTENT`
//! exactly when it is the head or tail of a listed extent.
//!
//! New memory comes in `CHUNK` mappings for blocks below it (the rest of the chunk joins the cache
//! clean), so a growing live set of mid-size blocks needs few mappings: the kernel's limit on them
//! (`vm.max_map_count`) stays far. Two things split a mapping: `release_address_space`, whose
//! refused munmaps keep the range, and `remap`, which moves a big block out of its chunk and leaves
//! a hole. The edges of the mappings mremap moved blocks to are marked (`FLAG_MAPPING_START`): the
//! kernel keeps such a range apart from its neighbours and mremap refuses a range across two, so
//! no extent and no block spans a marked edge.
//! A block that realloc must move goes to the largest free extent (`alloc_growing`), so that it
//! keeps growing in place. One lock serialises the cache (the large path is never the hot path);
//! no other box's lock is held when it is taken.

use crate::decay;
use crate::lock::Mutex;
use crate::os;
use crate::page_map::{self, Run, KIND_FREE_EXTENT, KIND_LARGE, RUN_SIZE};
use crate::probes::{self, Event, LockSite};
use core::ptr;
use core::sync::atomic::Ordering;

/// Mapping unit for blocks smaller than it: one mapping serves many blocks.
const CHUNK: usize = 4 << 20;
/// Dirty bytes the cache keeps committed at most; a free beyond it returns its pages at once.
const DIRTY_MAX: usize = 64 << 20;
/// Blocks from this size on grow by mremap (page tables move, nothing is copied) when they cannot
/// grow in place; smaller ones are copied, which costs less than the syscalls.
const REMAP_MIN: usize = 1 << 20;
/// Bins 0..EXACT_BINS hold extents of exactly 1..=EXACT_BINS runs; above, one bin per power of two.
const EXACT_BINS: usize = 32;
const BINS: usize = 64;
/// Extents examined per bin where a bin's first extent may not fit (log bins, over-aligned
/// requests): a good fit found quickly beats the best fit found slowly.
const SCAN_LIMIT: usize = 32;
/// Requests beyond this never succeed on a 47-bit address space.
const MAX_BYTES: usize = 1 << 46;

const DIRTY: usize = 0;
const CLEAN: usize = 1;

/// `Run::large_flags` of a free extent's head: its pages are committed.
const FLAG_DIRTY: u8 = 1;
/// `Run::large_flags`: one of this box's mappings begins at this run. The kernel may keep two
/// mappings apart (a range moved by mremap keeps its own page offset and never merges with its
/// neighbours) and mremap refuses (EFAULT) a range spanning two, so no free extent and no block
/// spans the line before such a run, and `remap` checks it too. Only mremap targets are marked
/// (`mark_mapping`).
const FLAG_MAPPING_START: u8 = 2;

struct State {
    bins: [[*mut Run; BINS]; 2],
    bytes: [usize; 2],
}

// SAFETY: the raw pointers are descriptors in the never-unmapped page map; the mutex serialises access.
unsafe impl Send for State {}

// Indices are masked into range, so no bounds check (and no panic path) reaches malloc.
impl State {
    fn bin(&mut self, state: usize, bin: usize) -> &mut *mut Run {
        &mut self.bins[state & 1][bin & (BINS - 1)]
    }
    fn first(&self, state: usize, bin: usize) -> *mut Run {
        self.bins[state & 1][bin & (BINS - 1)]
    }
    fn bytes(&mut self, state: usize) -> &mut usize {
        &mut self.bytes[state & 1]
    }
    /// Adds `delta` (wrapping: a removal passes its two's complement) to `state`'s bytes; the
    /// statistics follow the committed ones.
    fn count(&mut self, state: usize, delta: usize) {
        let bytes = self.bytes(state);
        *bytes = bytes.wrapping_add(delta);
        if state == DIRTY {
            crate::stats::large_dirty(*bytes);
        }
    }
    fn cached(&self) -> usize {
        self.bytes[DIRTY & 1] + self.bytes[CLEAN & 1]
    }
}

static CACHE: Mutex<State> = Mutex::new(
    Some(LockSite::Large),
    State {
        bins: [[ptr::null_mut(); BINS]; 2],
        bytes: [0; 2],
    },
);

fn bin_of(runs: usize) -> usize {
    if runs <= EXACT_BINS {
        return runs - 1;
    }
    let log = (usize::BITS - 1 - runs.leading_zeros()) as usize;
    (EXACT_BINS + log - EXACT_BINS.trailing_zeros() as usize).min(BINS - 1)
}

/// True if the listed extent at `head` is dirty.
///
/// SAFETY (for callers): `head` is a descriptor of this box's, read under the cache's lock.
unsafe fn is_dirty(head: *mut Run) -> bool {
    // SAFETY: as the caller promised.
    unsafe { (*head).large_flags & FLAG_DIRTY != 0 }
}

/// True if one of this box's mappings begins at `addr` (see `FLAG_MAPPING_START`); called with the
/// cache's lock held, which every write of the flag holds too.
fn mapping_starts_at(addr: usize) -> bool {
    let run = desc(addr);
    // SAFETY: a non-null descriptor lies in a mapped leaf; the flag is written under the lock.
    !run.is_null() && unsafe { (*run).large_flags } & FLAG_MAPPING_START != 0
}

/// Records that this box mapped `[start, start+len)`: a line left inside it by an earlier mapping
/// there (since unmapped, or moved away by mremap) is cleared, and with `edges` (an mremap target)
/// both of its edges become lines no extent or block crosses. A plain mmap'd chunk is not marked:
/// the kernel merges it with an adjacent anonymous mapping, and marking every chunk fragmented the
/// cache (large-churn at half speed, docs/decisions.md). The line at `start` is never cleared: it
/// may be the end of an mremap target just before this mapping, which the kernel keeps apart from
/// it. The run after the end may be another box's or none yet. Called with the cache's lock held.
fn mark_mapping(_locked: &mut State, start: usize, len: usize, edges: bool) {
    if edges {
        for edge in [start, start + len] {
            let run = desc(edge);
            if !run.is_null() {
                // SAFETY: a descriptor in a mapped leaf; the byte is the large box's, under its
                // lock (a page-source run's flag byte is never read).
                unsafe { (*run).large_flags |= FLAG_MAPPING_START };
            }
        }
    }
    let mut addr = start + RUN_SIZE;
    while addr < start + len {
        let run = desc(addr);
        // SAFETY: the new mapping's descriptors exist (`ensure_descriptors`) and are this box's.
        // Only set flags are written: reading an untouched page-map page commits nothing.
        unsafe {
            if (*run).large_flags & FLAG_MAPPING_START != 0 {
                (*run).large_flags &= !FLAG_MAPPING_START;
            }
        }
        addr += RUN_SIZE;
    }
}

fn state_of(dirty: bool) -> usize {
    if dirty {
        DIRTY
    } else {
        CLEAN
    }
}

/// Descriptor of a run inside memory this box mapped (its leaf exists: `ensure_descriptors`).
fn desc(addr: usize) -> *mut Run {
    page_map::lookup(addr)
}

/// Creates the page-map leaves covering `[start, start+len)`, so every run in it has a descriptor.
fn ensure_descriptors(start: usize, len: usize) -> bool {
    const LEAF: usize = 1 << 32;
    let mut addr = start;
    while addr < start + len {
        if page_map::ensure(addr).is_null() {
            return false;
        }
        addr = (addr & !(LEAF - 1)) + LEAF;
    }
    !page_map::ensure(start + len - RUN_SIZE).is_null()
}

/// Lists `[start, start+len)` as a free extent without looking at its neighbours.
///
/// SAFETY (for callers): the range is this box's, holds no live block and is in no list.
unsafe fn link(s: &mut State, start: usize, len: usize, dirty: bool, stamp: u32) {
    let head = desc(start);
    let tail = desc(start + len - RUN_SIZE);
    let state = state_of(dirty);
    let bin = s.bin(state, bin_of(len / RUN_SIZE));
    // SAFETY: both descriptors exist (the range was mapped here) and belong to the cache now.
    unsafe {
        (*head).base = start;
        (*head).large_len = len;
        (*head).large_flags =
            ((*head).large_flags & !FLAG_DIRTY) | if dirty { FLAG_DIRTY } else { 0 };
        (*head).stamp = stamp;
        (*head).prev = ptr::null_mut();
        (*head).next = *bin;
        if !(*bin).is_null() {
            (**bin).prev = head;
        }
        (*tail).base = start;
        (*tail).tag().store(KIND_FREE_EXTENT, Ordering::Relaxed);
        (*head).tag().store(KIND_FREE_EXTENT, Ordering::Relaxed);
    }
    *bin = head;
    s.count(state, len);
}

/// Takes a listed extent out of its bin; its head and tail stop being marked free.
///
/// SAFETY (for callers): `head` is a listed extent's head.
unsafe fn unlink(s: &mut State, head: *mut Run) {
    // SAFETY: listed descriptors are the cache's under its lock.
    unsafe {
        let len = (*head).large_len;
        let state = state_of(is_dirty(head));
        if (*head).prev.is_null() {
            *s.bin(state, bin_of(len / RUN_SIZE)) = (*head).next;
        } else {
            (*(*head).prev).next = (*head).next;
        }
        if !(*head).next.is_null() {
            (*(*head).next).prev = (*head).prev;
        }
        s.count(state, len.wrapping_neg());
        (*desc((*head).base + len - RUN_SIZE))
            .tag()
            .store(0, Ordering::Relaxed);
        (*head).tag().store(0, Ordering::Relaxed);
    }
}

/// The listed extent whose head is at `addr`, in state `dirty`, or null.
fn free_head_at(addr: usize, dirty: bool) -> *mut Run {
    let run = desc(addr);
    if run.is_null() {
        return run;
    }
    // SAFETY: a non-null descriptor lies in a mapped leaf; a free-extent tag means the cache's
    // fields are valid (the box's invariant), and they are read under the cache's lock.
    unsafe {
        if (*run).tag().load(Ordering::Relaxed) == KIND_FREE_EXTENT
            && (*run).base == addr
            && is_dirty(run) == dirty
        {
            return run;
        }
    }
    ptr::null_mut()
}

/// The stamp of two merged extents, `a` of `a_len` bytes and `b` of `b_len`: the larger part's
/// (the earlier on a tie). A block carved from an old extent and freed again must not renew the
/// whole extent's stay (then a steady trickle of small reuses would keep it committed for ever),
/// and a big block freed next to a small old leftover must not inherit the leftover's age (then a
/// buffer reused every few milliseconds goes back to the kernel at every pass and faults in
/// again). At most half of an extent's bytes are older than its stamp. (Always the earlier stamp,
/// `decay-earliest-stamp`, lost: docs/decisions.md.)
fn merged_stamp(a: u32, a_len: usize, b: u32, b_len: usize) -> u32 {
    let earlier = if (b.wrapping_sub(a) as i32) < 0 { b } else { a };
    if a_len == b_len {
        return earlier;
    }
    if a_len > b_len {
        a
    } else {
        b
    }
}

/// Lists `[start, start+len)` as free, merged with free neighbours in the same state (never across
/// a marked edge, `FLAG_MAPPING_START`); a merged extent's stamp is `merged_stamp`.
///
/// SAFETY (for callers): as for `link`.
unsafe fn release(s: &mut State, mut start: usize, mut len: usize, dirty: bool, mut stamp: u32) {
    let next = if mapping_starts_at(start + len) {
        ptr::null_mut()
    } else {
        free_head_at(start + len, dirty)
    };
    // SAFETY: listed extents found under the lock; merging keeps the ranges contiguous.
    unsafe {
        if !next.is_null() {
            stamp = merged_stamp(stamp, len, (*next).stamp, (*next).large_len);
            len += (*next).large_len;
            unlink(s, next);
        }
        let before = desc(start - RUN_SIZE);
        if !before.is_null()
            && !mapping_starts_at(start)
            && (*before).tag().load(Ordering::Relaxed) == KIND_FREE_EXTENT
        {
            let prev = free_head_at((*before).base, dirty);
            if !prev.is_null() && (*prev).base + (*prev).large_len == start {
                stamp = merged_stamp(stamp, len, (*prev).stamp, (*prev).large_len);
                start = (*prev).base;
                len += (*prev).large_len;
                unlink(s, prev);
            }
        }
        link(s, start, len, dirty, stamp);
    }
}

/// Start of a `need`-byte block aligned to `align` inside the extent at `head`, if it fits.
fn fit(head: *mut Run, need: usize, align: usize) -> Option<usize> {
    // SAFETY: `head` is a listed extent's head, read under the lock.
    let (base, len) = unsafe { ((*head).base, (*head).large_len) };
    let start = (base + align - 1) & !(align - 1);
    (start - base <= len && len - (start - base) >= need).then_some(start)
}

/// Which fitting extent `find` picks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The smallest: what is left over stays as big as it can be.
    Best,
    /// The largest: room for the block to grow in place (`alloc_growing`).
    Largest,
}

/// A fitting extent for `need` bytes aligned to `align` among extents in `state`, as `how` says
/// (within `SCAN_LIMIT` extents per bin).
fn find(s: &State, state: usize, need: usize, align: usize, how: Fit) -> Option<(*mut Run, usize)> {
    let lowest = bin_of(need / RUN_SIZE);
    for step in 0..BINS - lowest {
        let bin = if how == Fit::Best {
            lowest + step
        } else {
            BINS - 1 - step
        };
        let mut run = s.first(state, bin);
        // An exact bin's first extent fits any run-aligned request for its size.
        if how == Fit::Best && bin < EXACT_BINS && align == RUN_SIZE && !run.is_null() {
            return fit(run, need, align).map(|start| (run, start));
        }
        let mut best: Option<(*mut Run, usize, usize)> = None;
        let mut seen = 0;
        while !run.is_null() && seen < SCAN_LIMIT {
            // SAFETY: listed descriptors, read under the lock.
            let len = unsafe { (*run).large_len };
            if let Some(start) = fit(run, need, align) {
                if best.is_none_or(|(_, _, best_len)| (len < best_len) == (how == Fit::Best)) {
                    best = Some((run, start, len));
                }
            }
            // SAFETY: as above.
            run = unsafe { (*run).next };
            seen += 1;
        }
        if let Some((run, start, _)) = best {
            return Some((run, start));
        }
    }
    None
}

/// Cuts `[start, start+need)` out of the extent at `head`; what is left on either side (an
/// alignment pad, the tail) stays listed in the same state.
///
/// SAFETY (for callers): `head` is a listed extent's head holding that range.
unsafe fn carve(s: &mut State, head: *mut Run, start: usize, need: usize) {
    // SAFETY: as the caller promised; the leftovers are the extent's own runs.
    unsafe {
        let (base, len, dirty, stamp) = (
            (*head).base,
            (*head).large_len,
            is_dirty(head),
            (*head).stamp,
        );
        unlink(s, head);
        if start > base {
            link(s, base, start - base, dirty, stamp);
        }
        let end = start + need;
        if end < base + len {
            link(s, end, base + len - end, dirty, stamp);
        }
    }
}

/// Makes `[start, start+len)` a large block: its head descriptor records it and `free` finds it.
fn publish(start: usize, len: usize) -> *mut u8 {
    let head = desc(start);
    // SAFETY: the range's descriptors exist and the block is the caller's alone.
    unsafe {
        (*head).large_len = len;
        (*head).base = start;
        (*head).tag().store(KIND_LARGE, Ordering::Release);
    }
    crate::stats::large(len, false);
    start as *mut u8
}

/// The statistics of a block whose length changed in place (or that moved) from `old` to `new`.
fn restated(old: usize, new: usize) {
    crate::stats::large(old, true);
    crate::stats::large(new, false);
}

/// A decay pass (`decay::tick`): dirty extents emptied longer than the decay period go back to
/// the kernel.
pub fn decay(now: u32) {
    let mut s = CACHE.lock();
    if *s.bytes(DIRTY) > 0 {
        purge(&mut s, |stamp| decay::expired(stamp, now));
    }
}

/// Decommits every dirty extent whose stamp `old` accepts and lists it clean; returns the bytes.
fn purge(s: &mut State, old: impl Fn(u32) -> bool) -> usize {
    let (mut extents, mut bytes) = (0u64, 0usize);
    for bin in 0..BINS {
        let mut run = s.first(DIRTY, bin);
        while !run.is_null() {
            // SAFETY: listed descriptors under the lock; `next` is read before the extent moves.
            unsafe {
                let next = (*run).next;
                if old((*run).stamp) {
                    let (base, len) = ((*run).base, (*run).large_len);
                    unlink(s, run);
                    os::decommit(base as *mut u8, len);
                    release(s, base, len, false, 0);
                    extents += 1;
                    bytes += len;
                }
                run = next;
            }
        }
    }
    if extents > 0 {
        probes::here(|c| {
            c.add(Event::DecayPurgeExtents, extents);
            c.add(Event::DecayPurgeBytes, bytes as u64);
        });
    }
    bytes
}

/// Maps fresh memory for a `need`-byte block aligned to `align`, with `room >= need` bytes free
/// from its start: a whole chunk when that is smaller (the rest joins the cache, clean). Null when
/// the kernel refuses.
fn map_new(need: usize, align: usize, room: usize) -> *mut u8 {
    let mut len = if room < CHUNK && align <= CHUNK {
        CHUNK
    } else {
        room
    };
    let mut p = os::map_aligned(len, align, false);
    if p.is_null() && len != need {
        len = need;
        p = os::map_aligned(len, align, false);
    }
    if p.is_null() {
        return p;
    }
    if !ensure_descriptors(p as usize, len) {
        // A refused unmap leaves untouched memory mapped: address space only.
        let _ = os::unmap(p, len);
        return ptr::null_mut();
    }
    let mut s = CACHE.lock();
    mark_mapping(&mut s, p as usize, len, false);
    if len > need {
        // SAFETY: the chunk's tail is fresh memory nobody else knows about.
        unsafe { release(&mut s, p as usize + need, len - need, false, 0) };
    }
    drop(s);
    publish(p as usize, need)
}

/// `size` bytes aligned to `align` (a power of two); zeroed if `zero`. Null when the size is
/// impossible or the kernel refuses; a refused request larger than everything the caches could
/// give back fails alone, leaving them as they are.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    alloc_placed(size, align, zero, false)
}

/// `size` bytes for a block that realloc moves because it grows: placed at the start of the largest
/// free extent (committed ones first), so a buffer grown in small steps keeps growing in place
/// instead of being copied at every step that meets a neighbour. Best fit would put it in the
/// tightest hole (`realloc-best-fit`, measured and retired: docs/decisions.md).
pub fn alloc_growing(size: usize) -> *mut u8 {
    alloc_placed(size, RUN_SIZE, false, true)
}

/// Where `alloc_placed` looks, in order: (bytes free from the block's start, extent state, which
/// fit). Any block takes the best fit, committed extents first; a growing block first tries the
/// largest extent with room for twice its size (committed ones first: the pages a buffer freed a
/// moment ago serve the next one).
fn placements(need: usize, growing: bool) -> impl Iterator<Item = (usize, usize, Fit)> {
    let all = [
        (2 * need, DIRTY, Fit::Largest),
        (2 * need, CLEAN, Fit::Largest),
        (need, DIRTY, Fit::Best),
        (need, CLEAN, Fit::Best),
    ];
    all.into_iter().skip(if growing { 0 } else { 2 })
}

fn alloc_placed(size: usize, align: usize, zero: bool, growing: bool) -> *mut u8 {
    if size > MAX_BYTES || align > MAX_BYTES {
        probes::here(|c| c.add(Event::LargeHugeFail, 1));
        return ptr::null_mut();
    }
    let need = (size.max(1) + RUN_SIZE - 1) & !(RUN_SIZE - 1);
    let align = align.max(RUN_SIZE);
    let mut s = CACHE.lock();
    for (room, state, how) in placements(need, growing) {
        if let Some((head, start)) = find(&s, state, room, align, how) {
            // SAFETY: `find` returned a listed extent holding the range.
            unsafe { carve(&mut s, head, start, need) };
            drop(s);
            let p = publish(start, need);
            if zero && state == DIRTY {
                // SAFETY: the block is `need >= size` bytes and the caller's alone.
                unsafe { ptr::write_bytes(p, 0, size) };
            }
            probes::here(|c| {
                c.add(Event::LargeAlloc, 1);
                c.add(Event::LargeCacheHit, 1);
            });
            return p;
        }
    }
    let cached = s.cached();
    drop(s);
    probes::here(|c| c.add(Event::LargeCacheMiss, 1));
    let room = if growing { 2 * need } else { need };
    let mut p = map_new(need, align, room);
    if p.is_null() {
        // Giving cached address space back helps only a request it could cover (RLIMIT_AS);
        // anything larger fails alone instead of emptying the caches one munmap at a time.
        if need + align - RUN_SIZE <= cached + crate::page_source::free_bytes() {
            let any = release_address_space();
            if crate::page_source::release_address_space() || any {
                p = map_new(need, align, room);
            }
        } else {
            probes::here(|c| c.add(Event::LargeHugeFail, 1));
        }
    }
    if !p.is_null() {
        probes::here(|c| c.add(Event::LargeAlloc, 1));
    }
    p
}

/// Usable length of the large block at `p` (whole runs).
pub fn usable_size(p: *mut u8) -> usize {
    let run = page_map::lookup(p as usize);
    // SAFETY: the caller found a large tag for `p`, so the descriptor exists.
    unsafe { (*run).large_len }
}

/// The block at `p` (a large tag was found for it); aborts on a pointer inside one.
fn block_len(p: *mut u8) -> (*mut Run, usize) {
    let run = page_map::lookup(p as usize);
    // SAFETY: the caller found a large tag for `p`, so the descriptor exists.
    unsafe {
        if (*run).base != p as usize {
            os::fail("large", "free of a pointer inside a large object");
        }
        (run, (*run).large_len)
    }
}

/// Files dead memory in the cache: committed while the cache's committed bytes stay within
/// `DIRTY_MAX`, decommitted first otherwise.
///
/// # Safety
/// `[start, start+len)` is whole runs of this box that nothing uses any more.
unsafe fn file_dead(s: &mut State, start: usize, len: usize, now: u32) {
    let dirty = *s.bytes(DIRTY) + len <= DIRTY_MAX;
    if !dirty {
        os::decommit(start as *mut u8, len);
        probes::here(|c| {
            c.add(Event::DecayPurgeExtents, 1);
            c.add(Event::DecayPurgeBytes, len as u64);
        });
    }
    // SAFETY: the caller's contract.
    unsafe { release(s, start, len, dirty, now) };
}

pub fn free(p: *mut u8) {
    let (run, len) = block_len(p);
    // SAFETY: clearing the tag first makes a second free of `p` fail fast as foreign.
    unsafe { (*run).tag().store(0, Ordering::Release) };
    let now = decay::now_ms();
    let mut s = CACHE.lock();
    // SAFETY: the block is dead and its runs are this box's.
    unsafe { file_dead(&mut s, p as usize, len, now) };
    drop(s);
    crate::stats::large(len, true);
    probes::here(|c| c.add(Event::LargeFree, 1));
}

/// realloc of the large block at `p` to `size` (> SMALL_MAX) without copying: shrinks in place,
/// grows into its own slack or a free neighbour, or (big blocks) moves by mremap. Returns the
/// block (at `p` or moved), or null when only a copy can do it (`p` untouched).
pub fn resize(p: *mut u8, size: usize) -> *mut u8 {
    if size > MAX_BYTES {
        return ptr::null_mut();
    }
    let need = (size + RUN_SIZE - 1) & !(RUN_SIZE - 1);
    let (head, old) = block_len(p);
    let end = p as usize + old;
    if need <= old {
        // As for small blocks: kept whole unless that would waste more than half (growth room
        // from a geometric mremap must survive the next step's realloc).
        if need <= old / 2 {
            let mut s = CACHE.lock();
            // SAFETY: the block is the caller's; its tail runs leave it for the cache.
            unsafe {
                (*head).large_len = need;
                file_dead(&mut s, p as usize + need, old - need, decay::now_ms());
            }
            drop(s);
            restated(old, need);
            probes::here(|c| c.add(Event::LargeShrinkInPlace, 1));
        }
        return p;
    }
    let mut s = CACHE.lock();
    // A block never grows across a marked edge: mremap could not move it any more.
    let across = mapping_starts_at(end);
    for dirty in [true, false] {
        if across {
            break;
        }
        let next = free_head_at(end, dirty);
        // SAFETY: a listed neighbour read under the lock.
        if !next.is_null() && unsafe { (*next).large_len } >= need - old {
            // SAFETY: the neighbour holds `[end, end + need - old)`; the block takes it over.
            unsafe {
                carve(&mut s, next, end, need - old);
                (*head).large_len = need;
            }
            drop(s);
            restated(old, need);
            probes::here(|c| c.add(Event::LargeGrowInPlace, 1));
            return p;
        }
    }
    drop(s);
    if old < REMAP_MIN {
        return ptr::null_mut();
    }
    remap(p, head, old, need)
}

/// Moves a big block to a fresh mapping with room for geometric growth; null if the kernel refuses.
fn remap(p: *mut u8, head: *mut Run, old: usize, need: usize) -> *mut u8 {
    // No block spans a marked edge (extents never coalesce and blocks never grow across one), so
    // mremap, which refuses a range spanning two mappings, is never asked to.
    let room = need.max(old + old / 2);
    let len = (room + RUN_SIZE - 1) & !(RUN_SIZE - 1);
    let to = os::map_aligned(len, RUN_SIZE, false);
    if to.is_null() {
        return to;
    }
    if !ensure_descriptors(to as usize, len) {
        let _ = os::unmap(to, len);
        return ptr::null_mut();
    }
    mark_mapping(&mut CACHE.lock(), to as usize, len, true);
    let refused = os::remap(p, old, len, to);
    if refused.is_err() {
        probes::here(|c| c.add(Event::LargeRemapRefused, 1));
    }
    match refused {
        Ok(()) => {}
        Err(os::RemapRefused::TargetKept) => {
            let mut s = CACHE.lock();
            // SAFETY: the fresh mapping is this box's and holds nothing.
            unsafe { release(&mut s, to as usize, len, false, 0) };
            return ptr::null_mut();
        }
        // The range is not ours to hand out any more; its descriptors stay clear (never tagged).
        Err(os::RemapRefused::TargetLost) => return ptr::null_mut(),
    }
    // SAFETY: `p`'s range is unmapped now; its head descriptor must not claim a block there
    // (its other runs' descriptors are already clear: none is a free extent's head or tail).
    unsafe { (*head).tag().store(0, Ordering::Release) };
    crate::stats::large(old, true);
    probes::here(|c| c.add(Event::LargeRemap, 1));
    publish(to as usize, len)
}

/// Decommits every dirty extent (malloc_trim); returns the bytes given back.
pub fn trim() -> usize {
    purge(&mut CACHE.lock(), |_| true)
}

/// Unmaps every free extent, giving its address space back: called when a mapping failed
/// (RLIMIT_AS, the mapping-count limit). At the first munmap the kernel refuses (the mapping-count
/// limit: unmapping inside a mapping splits it) that extent is kept, decommitted, and the rest is
/// left as it is: further tries would be refused alike, one syscall each. True if anything was
/// unmapped.
pub fn release_address_space() -> bool {
    let mut s = CACHE.lock();
    let mut kept: *mut Run = ptr::null_mut();
    let mut any = false;
    for state in [DIRTY, CLEAN] {
        for bin in 0..BINS {
            while kept.is_null() {
                let run = s.first(state, bin);
                if run.is_null() {
                    break;
                }
                // SAFETY: a listed extent, taken out under the lock; kept ones wait on a local
                // list (through `next`) until every bin is done.
                unsafe {
                    let (base, len) = ((*run).base, (*run).large_len);
                    unlink(&mut s, run);
                    if os::unmap_or_decommit(base as *mut u8, len) {
                        any = true;
                    } else {
                        (*run).large_len = len;
                        (*run).next = kept;
                        kept = run;
                    }
                }
            }
        }
    }
    while !kept.is_null() {
        // SAFETY: each kept descriptor is the head of a range this box still maps, in no list.
        unsafe {
            let next = (*kept).next;
            link(&mut s, (*kept).base, (*kept).large_len, false, 0);
            kept = next;
        }
    }
    any
}

pub fn fork_acquire() {
    CACHE.fork_acquire();
}
pub fn fork_release() {
    CACHE.fork_release();
}
pub fn fork_reset() {
    CACHE.fork_reset();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stamps_follow_the_larger_part() {
        let run = RUN_SIZE;
        let now = 10_000u32;
        // A big block freed now beside a small old leftover: as young as the block.
        assert_eq!(merged_stamp(now, 63 * run, now - 1000, run), now);
        // A small block freed now beside a big old extent renews nothing.
        assert_eq!(merged_stamp(now, run, now - 1000, 63 * run), now - 1000);
        // A tie keeps the earlier, in either order and across the clock's wraparound.
        let old = 5u32.wrapping_sub(1000);
        assert_eq!(merged_stamp(5, 2 * run, old, 2 * run), old);
        assert_eq!(merged_stamp(old, 2 * run, 5, 2 * run), old);
    }
}
