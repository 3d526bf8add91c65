//! Fail fast (feature `failfast`): misuse and heap corruption abort with one line naming the box
//! and the address, instead of silently corrupting the pools.
//!
//! - A live bitmap, one bit per 16-byte granule of every run, set when an object is handed out and
//!   cleared (atomic RMW, since objects of one word may sit in several threads) when it is freed:
//!   a free that finds it clear is a double free (or a free of an object never handed out).
//! - A free must name an object start: `(p - run base) % class size == 0`, within the run. Aligned
//!   allocations need nothing more, because their classes are multiples of the alignment.
//! - Every free object carries a canary in its first word, `secret ^ address` (the encoded null
//!   link), written when it is carved or freed and checked (then zeroed, so the program never sees
//!   the secret) when it is handed out again: a write after free aborts at that handout.
//!
//! The secret comes from the kernel's AT_RANDOM bytes, mixed with this library's load address.
//! No free list is threaded through objects, so there is no in-object link to check.

// Compiled in every build, so it is type-checked in every build; callers reach it only under
// `if config::FAILFAST`, so a plain build links none of it (nor its bitmap).
pub use checks::{check_large_free, check_live, fail_foreign, on_alloc, on_carve, on_free};

mod checks {
    use crate::os;
    use crate::page_map::{self, KIND_SMALL, RUN_SIZE};
    use crate::size_class;
    use core::ptr;
    use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    const BOX: &str = "failfast";

    /// One bit per 16-byte granule; one lazily mapped bitmap leaf per 4 GiB of address space, as
    /// the page map cuts it (32 MiB of MAP_NORESERVE each, touched only where runs live).
    const GRANULE_SHIFT: usize = 4;
    const LEAF_SHIFT: usize = 32;
    const LEAF_WORDS: usize = 1 << (LEAF_SHIFT - GRANULE_SHIFT - 6);
    const TOP_ENTRIES: usize = 1 << (47 - LEAF_SHIFT);

    static LEAVES: [AtomicPtr<AtomicU64>; TOP_ENTRIES] =
        [const { AtomicPtr::new(ptr::null_mut()) }; TOP_ENTRIES];

    /// 0 until first use; never 0 afterwards.
    static SECRET: AtomicUsize = AtomicUsize::new(0);

    #[inline]
    fn secret() -> usize {
        let s = SECRET.load(Ordering::Relaxed);
        if s != 0 {
            return s;
        }
        init_secret()
    }

    /// Racing initialisers compute the same value from the same inputs, so a plain store is enough.
    #[cold]
    fn init_secret() -> usize {
        // SAFETY: getauxval only reads the auxiliary vector; AT_RANDOM points at 16 bytes the kernel
        // filled with random data for this exec, alive for the process's lifetime.
        let (a, b) = unsafe {
            let bytes = libc::getauxval(libc::AT_RANDOM) as *const u64;
            if bytes.is_null() {
                (0, 0)
            } else {
                (bytes.read_unaligned(), bytes.add(1).read_unaligned())
            }
        };
        let load_address = &SECRET as *const AtomicUsize as u64;
        let s = (mix(a ^ mix(b ^ load_address)) as usize) | 1;
        SECRET.store(s, Ordering::Relaxed);
        s
    }

    /// splitmix64's finaliser: every input bit reaches every output bit.
    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// The first word of a free object at `addr`: its encoded null link.
    #[inline]
    pub fn canary(addr: usize) -> usize {
        secret() ^ addr
    }

    /// The bitmap word holding `addr`'s bit and the bit's mask; null word when no object was
    /// ever carved in `addr`'s 4 GiB region.
    #[inline]
    fn live_word(addr: usize) -> (*const AtomicU64, u64) {
        let top = addr >> LEAF_SHIFT;
        let mask = 1u64 << ((addr >> GRANULE_SHIFT) & 63);
        let Some(slot) = LEAVES.get(top) else {
            return (ptr::null(), mask);
        };
        let leaf = slot.load(Ordering::Acquire);
        if leaf.is_null() {
            return (ptr::null(), mask);
        }
        let index = (addr >> (GRANULE_SHIFT + 6)) & (LEAF_WORDS - 1);
        // SAFETY: a leaf holds LEAF_WORDS words and the index is masked to that range.
        (unsafe { leaf.add(index) }, mask)
    }

    /// Maps `addr`'s bitmap leaf if needed (the first carve in a 4 GiB region).
    #[cold]
    fn ensure_leaf(addr: usize) {
        let Some(slot) = LEAVES.get(addr >> LEAF_SHIFT) else {
            os::fail_at("page_map", "object above the 47-bit address space", addr);
        };
        if !slot.load(Ordering::Acquire).is_null() {
            return;
        }
        let bytes = LEAF_WORDS * 8;
        let fresh = os::map(bytes, true).cast::<AtomicU64>();
        if fresh.is_null() {
            os::fail_at(BOX, "out of memory for the live-object bitmap", addr);
        }
        if slot
            .compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // A refused unmap leaves an untouched leaf mapped (address space only).
            let _ = os::unmap(fresh.cast(), bytes);
        }
    }

    /// A never-used object is leaving the central pool's bump region: give it its canary.
    #[inline]
    pub fn on_carve(obj: *mut u8) {
        if live_word(obj as usize).0.is_null() {
            ensure_leaf(obj as usize);
        }
        // SAFETY: `obj` is a fresh object of a run the central pool owns; nobody else holds it.
        unsafe { obj.cast::<usize>().write(canary(obj as usize)) };
    }

    /// `obj` (null tolerated) is being handed to the program: it must be free and unwritten since
    /// it was freed.
    #[inline]
    pub fn on_alloc(obj: *mut u8) {
        if obj.is_null() {
            return;
        }
        let addr = obj as usize;
        let (word, mask) = live_word(addr);
        if word.is_null() {
            os::fail_at(
                BOX,
                "handing out an object no run carved (corrupt cache)",
                addr,
            );
        }
        // SAFETY: `word` points into a mapped bitmap leaf, never unmapped.
        if unsafe { (*word).fetch_or(mask, Ordering::AcqRel) } & mask != 0 {
            os::fail_at(
                BOX,
                "handing out an object that is already live (corrupt cache)",
                addr,
            );
        }
        // SAFETY: a free object of a class of at least 16 bytes, now ours.
        unsafe {
            if obj.cast::<usize>().read() != canary(addr) {
                os::fail_at(
                    BOX,
                    "write after free (the free object's canary changed)",
                    addr,
                );
            }
            obj.cast::<usize>().write(0);
        }
    }

    /// Whether `p` is where an object of `class` starts, if its run holds that class (runs are
    /// RUN_SIZE-aligned and objects sit at multiples of the class size from the run start).
    #[inline]
    fn is_object_start(p: usize, class: usize) -> bool {
        let size = size_class::size_of(class);
        let offset = p & (RUN_SIZE - 1);
        offset.is_multiple_of(size) && offset + size <= RUN_SIZE
    }

    /// Aborts unless `p` is the start of an object of `class` within its run.
    #[inline]
    fn check_object_start(p: usize, class: usize, what: &str) {
        if !is_object_start(p, class) {
            os::fail_at(BOX, what, p);
        }
    }

    /// The program frees `p`, found in a run of `class`.
    #[inline]
    pub fn on_free(p: *mut u8, class: usize) {
        let addr = p as usize;
        check_object_start(
            addr,
            class,
            "free of a pointer inside an object (interior pointer)",
        );
        let (word, mask) = live_word(addr);
        // SAFETY: a non-null word points into a mapped bitmap leaf, never unmapped.
        if word.is_null() || unsafe { (*word).fetch_and(!mask, Ordering::AcqRel) } & mask == 0 {
            os::fail_at(
                BOX,
                "double free (or free of an object never handed out)",
                addr,
            );
        }
        // SAFETY: `p` is an object start of a run of `class` (>= 16 bytes) that the program just
        // gave back.
        unsafe { p.cast::<usize>().write(canary(addr)) };
    }

    /// realloc of `p`: it must be a live object (small) or a large block's start.
    pub fn check_live(p: *mut u8) {
        let addr = p as usize;
        let tag = page_map::tag_of(addr);
        if page_map::tag_kind(tag) != KIND_SMALL {
            return check_large_free(p);
        }
        check_object_start(
            addr,
            page_map::tag_class(tag),
            "realloc of an interior pointer",
        );
        let (word, mask) = live_word(addr);
        // SAFETY: a non-null word points into a mapped bitmap leaf, never unmapped.
        if word.is_null() || unsafe { (*word).load(Ordering::Acquire) } & mask == 0 {
            os::fail_at(BOX, "realloc of a freed pointer", addr);
        }
    }

    /// Free (or realloc) of `p` whose tag is not small: a large block's start, else abort.
    pub fn check_large_free(p: *mut u8) {
        let run = page_map::lookup(p as usize);
        // SAFETY: a non-null lookup result points into a mapped page-map leaf.
        let large_start = !run.is_null()
            && unsafe {
                page_map::tag_kind((*run).tag().load(Ordering::Acquire)) == page_map::KIND_LARGE
                    && (*run).base == p as usize
            };
        if !large_start {
            fail_foreign(p);
        }
    }

    /// A pointer no run or large block of hz3 starts at.
    #[cold]
    pub fn fail_foreign(p: *mut u8) -> ! {
        let addr = p as usize;
        let run = page_map::lookup(addr);
        let tag = if run.is_null() {
            0
        } else {
            // SAFETY: as in check_large_free.
            unsafe { (*run).tag().load(Ordering::Acquire) }
        };
        if page_map::tag_kind(tag) == page_map::KIND_LARGE {
            os::fail_at("large", "pointer inside a large object", addr);
        }
        os::fail_at(
            "page_map",
            "pointer hz3 did not allocate (foreign, or a large block already freed)",
            addr,
        )
    }
}
