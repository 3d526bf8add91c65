//! Page map: address -> run descriptor, with no header in front of objects.
//!
//! The address space is cut into 64 KiB runs. A static top table (one slot per 4 GiB) points to
//! lazily mapped leaves (MAP_NORESERVE) of 65 536 descriptors each: two dependent loads. A
//! descriptor carries the run's tag (owner heap | class | kind), which `free` reads, and the central
//! pool's bookkeeping for the run. Pointers hz3 never handed out find a null leaf or a zero tag:
//! "foreign". (A flat one-load map over a reserved range was measured and retired:
//! docs/decisions.md, "Local hot path".)

use crate::os;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

pub const RUN_SHIFT: usize = 16;
pub const RUN_SIZE: usize = 1 << RUN_SHIFT;
const LEAF_SHIFT: usize = 32;
const LEAF_ENTRIES: usize = 1 << (LEAF_SHIFT - RUN_SHIFT);
/// User space on x86-64 (and 48-bit aarch64) ends below 2^47.
const ADDRESS_BITS: usize = 47;
const TOP_ENTRIES: usize = 1 << (ADDRESS_BITS - LEAF_SHIFT);

pub const KIND_SMALL: usize = 1;
pub const KIND_LARGE: usize = 2;
/// The whole tag of the head or tail run of a free extent in the large box's cache. Its kind bits
/// are clear (`tag_kind` 0, bit 0 clear for `tag_is_small`), so `free` or `malloc_usable_size` of a
/// pointer there (a large block freed twice) is foreign; only the large box compares tags with it.
pub const KIND_FREE_EXTENT: usize = 4;
const KIND_MASK: usize = 3;
const CLASS_SHIFT: usize = 2;
const CLASS_MASK: usize = 0x7f;
/// Owner heaps are page aligned, so the tag's low 12 bits are free for kind and class.
pub const OWNER_MASK: usize = !0xfff;

/// Per-run descriptor. `tag` is read by any thread; the other fields belong to whoever holds the
/// run: the central pool's lock for the run's class, or the page source's lock while it is free.
#[repr(C, align(64))]
pub struct Run {
    /// The run's side memory from the page source (never the run itself): the set of objects
    /// returned to the central pool and not yet handed out again (see `run_free`).
    pub side: *mut u8,
    /// Members of that set.
    pub nfree: u16,
    /// The lowest bitmap word that may hold a member (`run_free`).
    pub scan_from: u16,
    /// Objects currently outside the central pool (caches, inboxes, stashes, the program).
    pub used: u16,
    /// Objects carved from the bump region so far.
    pub carved: u16,
    pub capacity: u16,
    pub in_partial: bool,
    /// The large box's bits (`large.rs`): a free extent's pages were touched since they were last
    /// returned to the kernel (its head run); one of the large box's mappings begins at this run
    /// (kept for the mapping's life, whatever the run holds).
    pub large_flags: u8,
    /// Free runs and free large extents: when they were emptied (`decay::now_ms`), for purging by age.
    pub stamp: u32,
    /// Links in the central pool's partial list or the page source's free lists.
    pub next: *mut Run,
    pub prev: *mut Run,
    /// Large objects and free large extents (their head run): length in bytes, a multiple of RUN_SIZE.
    pub large_len: usize,
    /// A run's first byte; a large object's or free extent's start (also in a free extent's tail run).
    pub base: usize,
}

/// A leaf's descriptors in bytes.
const RUNS_BYTES: usize = LEAF_ENTRIES * core::mem::size_of::<Run>();
/// A leaf starts with its runs' tags side by side (8 bytes a run, 8
/// runs a cache line; its descriptors follow): `free` reads a tag per call, and one line per
/// 64 KiB run spreads a heap's tags over as many lines as it has runs, which the program's own
/// object traffic evicts from L1 between two frees into the same run (server-table:
/// docs/decisions.md). The descriptors then start on a RUNS_BYTES boundary, so a descriptor finds
/// its tag from its own address.
const TAGS_BYTES: usize = LEAF_ENTRIES * core::mem::size_of::<AtomicUsize>();
const LEAF_BYTES: usize = TAGS_BYTES + RUNS_BYTES;
const _: () = assert!(RUNS_BYTES.is_power_of_two());
/// Address space mapped for a leaf: with the tag array, room to place the descriptors on a
/// RUNS_BYTES boundary. The slack is never touched nor trimmed (MAP_NORESERVE address space only;
/// a trim would be one more munmap per leaf).
const LEAF_MAP_BYTES: usize = LEAF_BYTES + RUNS_BYTES;

impl Run {
    /// The run's tag (owner heap | class | kind), which any thread may read.
    #[inline(always)]
    pub fn tag(&self) -> &AtomicUsize {
        let at = self as *const Run as usize;
        let runs = at & !(RUNS_BYTES - 1);
        let index = (at - runs) / core::mem::size_of::<Run>();
        // SAFETY: descriptors live only in leaves (`ensure`): RUNS_BYTES-aligned, right after
        // their tag array; `index < LEAF_ENTRIES`, and a leaf is never unmapped.
        unsafe { &*((runs - TAGS_BYTES) as *const AtomicUsize).add(index) }
    }
}

#[inline(always)]
pub fn tag_small(owner: usize, class: usize) -> usize {
    owner | (class << CLASS_SHIFT) | KIND_SMALL
}
#[inline(always)]
pub fn tag_kind(tag: usize) -> usize {
    tag & KIND_MASK
}
/// `tag_kind(tag) == KIND_SMALL` in one bit test: no other kind (nor a foreign zero) has bit 0.
#[inline(always)]
pub fn tag_is_small(tag: usize) -> bool {
    tag & KIND_SMALL != 0
}
const _: () = assert!(KIND_LARGE & KIND_SMALL == 0 && KIND_MASK == KIND_SMALL | KIND_LARGE);
const _: () = assert!(KIND_FREE_EXTENT & KIND_MASK == 0 && KIND_FREE_EXTENT & OWNER_MASK == 0);
#[inline(always)]
pub fn tag_class(tag: usize) -> usize {
    (tag >> CLASS_SHIFT) & CLASS_MASK
}
#[inline(always)]
pub fn tag_owner(tag: usize) -> usize {
    tag & OWNER_MASK
}

static TOP: [AtomicPtr<Run>; TOP_ENTRIES] =
    [const { AtomicPtr::new(ptr::null_mut()) }; TOP_ENTRIES];

/// The leaf covering `addr`, or null if hz3 has never mapped memory in its 4 GiB.
#[inline(always)]
fn leaf_of(addr: usize) -> *mut Run {
    let top = addr >> LEAF_SHIFT;
    if top >= TOP_ENTRIES {
        return ptr::null_mut();
    }
    // SAFETY: `top < TOP_ENTRIES` was checked above.
    unsafe { TOP.get_unchecked(top) }.load(Ordering::Acquire)
}

#[inline(always)]
fn index_in_leaf(addr: usize) -> usize {
    (addr >> RUN_SHIFT) & (LEAF_ENTRIES - 1)
}

/// Descriptor of the run holding `addr`, or null if hz3 has never mapped memory there.
#[inline(always)]
pub fn lookup(addr: usize) -> *mut Run {
    let leaf = leaf_of(addr);
    if leaf.is_null() {
        return leaf;
    }
    // SAFETY: a leaf holds its tag array (TAGS_BYTES) then LEAF_ENTRIES descriptors, and the
    // index is masked to that range.
    unsafe { leaf.byte_add(TAGS_BYTES).add(index_in_leaf(addr)) }
}

/// The tag of the run holding `addr` (0 for foreign memory).
#[inline(always)]
pub fn tag_of(addr: usize) -> usize {
    let leaf = leaf_of(addr);
    if leaf.is_null() {
        return 0;
    }
    // SAFETY: a mapped leaf starts with LEAF_ENTRIES tags; the index is masked to that range.
    unsafe { (*leaf.cast::<AtomicUsize>().add(index_in_leaf(addr))).load(Ordering::Relaxed) }
}

/// Descriptor for `addr`, creating its leaf if needed (called when hz3 maps memory there).
/// Null only if the leaf cannot be mapped.
pub fn ensure(addr: usize) -> *mut Run {
    let top = addr >> LEAF_SHIFT;
    if top >= TOP_ENTRIES {
        os::fail("page_map", "mapping above the 47-bit address space");
    }
    let slot = &TOP[top];
    if slot.load(Ordering::Acquire).is_null() {
        let raw = os::map(LEAF_MAP_BYTES, true);
        if raw.is_null() {
            return ptr::null_mut();
        }
        let runs = (raw as usize + TAGS_BYTES).next_multiple_of(RUNS_BYTES);
        let fresh = (runs - TAGS_BYTES) as *mut Run;
        if slot
            .compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Lost the race: a refused unmap leaves an untouched leaf mapped (address space only).
            let _ = os::unmap(raw, LEAF_MAP_BYTES);
        }
    }
    lookup(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_fit_one_cache_line() {
        assert_eq!(core::mem::size_of::<Run>(), 64);
    }

    #[test]
    fn insert_then_lookup_and_foreign() {
        let base = os::map_aligned(4 * RUN_SIZE, RUN_SIZE, false) as usize;
        assert!(base != 0);
        let run = ensure(base + RUN_SIZE);
        assert!(!run.is_null());
        let owner = 0x7000_0000_0000usize;
        // SAFETY: test-owned descriptor in a mapped leaf.
        unsafe { (*run).tag().store(tag_small(owner, 83), Ordering::Relaxed) };
        let t = tag_of(base + RUN_SIZE + 12345);
        assert_eq!(tag_kind(t), KIND_SMALL);
        assert_eq!(tag_class(t), 83);
        assert_eq!(tag_owner(t), owner);
        // Neighbouring runs in the same leaf were never tagged.
        assert_eq!(tag_of(base + 2 * RUN_SIZE), 0);
        assert_eq!(lookup(base + RUN_SIZE), run);
        assert_ne!(lookup(base), run);
        // Above user space, and in a 4 GiB region hz3 never touched.
        assert!(lookup(usize::MAX - 5).is_null());
        assert_eq!(tag_of(0x10), 0);
    }
}
