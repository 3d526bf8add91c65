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
    pub tag: AtomicUsize,
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

/// `tag` against `owner`'s small tags: `own_small_class` of the result is the class when the run is
/// one of `owner`'s small runs, else None. One xor and one test on the free hit path (`home-runs`),
/// where the owner check and the kind check would be two.
#[inline(always)]
pub fn tag_vs_owner(tag: usize, owner: usize) -> usize {
    // `+` is `|` here (owners are page aligned; 0 and 1 only mean "no heap", which callers test
    // apart) and makes one `lea` instead of a copy and an `or`.
    tag ^ owner.wrapping_add(KIND_SMALL)
}
#[inline(always)]
pub fn own_small_class(x: usize) -> Option<usize> {
    // Rotated, the kind bits land on top and the owner bits above the class: the word is below
    // 2^(12 - CLASS_SHIFT) only when both are clear, and is then the class (ror, cmp: no mask).
    let r = x.rotate_right(CLASS_SHIFT as u32);
    (r <= !OWNER_MASK >> CLASS_SHIFT).then_some(r)
}
const _: () = assert!(KIND_MASK == (1 << CLASS_SHIFT) - 1);
const _: () = assert!(((CLASS_MASK << CLASS_SHIFT) | KIND_MASK) & OWNER_MASK == 0);

static TOP: [AtomicPtr<Run>; TOP_ENTRIES] =
    [const { AtomicPtr::new(ptr::null_mut()) }; TOP_ENTRIES];

/// Descriptor of the run holding `addr`, or null if hz3 has never mapped memory there.
#[inline(always)]
pub fn lookup(addr: usize) -> *mut Run {
    let top = addr >> LEAF_SHIFT;
    if top >= TOP_ENTRIES {
        return ptr::null_mut();
    }
    // SAFETY: `top < TOP_ENTRIES` was checked above.
    let leaf = unsafe { TOP.get_unchecked(top) }.load(Ordering::Acquire);
    if leaf.is_null() {
        return leaf;
    }
    // SAFETY: a leaf holds LEAF_ENTRIES descriptors and the index is masked to that range.
    unsafe { leaf.add((addr >> RUN_SHIFT) & (LEAF_ENTRIES - 1)) }
}

/// The tag of the run holding `addr` (0 for foreign memory).
#[inline(always)]
pub fn tag_of(addr: usize) -> usize {
    let run = lookup(addr);
    if run.is_null() {
        return 0;
    }
    // SAFETY: a non-null lookup result points into a mapped leaf, never unmapped.
    unsafe { (*run).tag.load(Ordering::Relaxed) }
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
        let bytes = LEAF_ENTRIES * core::mem::size_of::<Run>();
        let fresh = os::map(bytes, true).cast::<Run>();
        if fresh.is_null() {
            return ptr::null_mut();
        }
        if slot
            .compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Lost the race: a refused unmap leaves an untouched leaf mapped (address space only).
            let _ = os::unmap(fresh.cast(), bytes);
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
        unsafe { (*run).tag.store(tag_small(owner, 83), Ordering::Relaxed) };
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
