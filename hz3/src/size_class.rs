//! Size classes: the one place that maps a request size to a class and back, both O(1).
//!
//! 16-byte steps up to 128 bytes (8 classes), then four classes per power of two up to 32 KiB
//! (32 classes), as jemalloc's: fewer classes share their recently freed objects, so a program's
//! hot objects span fewer cache lines (16-byte steps to 1 KiB, 84 classes, measured and retired:
//! docs/decisions.md, `coarse-classes`). Every class size is a multiple of 16, so every object is
//! 16-byte aligned; the largest power of two dividing a class size is also that class's natural
//! object alignment (runs start on a 64 KiB boundary), which the aligned-allocation path relies on.

/// Largest size served from size classes; above this the large box maps memory directly.
pub const SMALL_MAX: usize = 32 * 1024;
/// Where the 16-byte steps end and four classes per power of two begin.
const FINE_LIMIT: usize = 128;
const LG_FINE: usize = FINE_LIMIT.trailing_zeros() as usize;
const FINE_CLASSES: usize = FINE_LIMIT / 16;
/// Number of classes.
pub const NUM_CLASSES: usize = FINE_CLASSES + (SMALL_MAX.trailing_zeros() as usize - LG_FINE) * 4;

/// Class index for a request of `size` bytes (`size <= SMALL_MAX`). `size == 0` maps to the smallest class.
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    class_of_nonzero(size.max(1))
}

/// `class_of` for `1 <= size <= SMALL_MAX` (malloc's hit path, which sends 0 elsewhere): a shift
/// up to FINE_LIMIT, one load from a table above (a class there is fixed by
/// `(size - 1) >> COARSE_SHIFT`: a 1 KiB table).
#[inline(always)]
pub fn class_of_nonzero(size: usize) -> usize {
    let s = size - 1;
    if s < FINE_LIMIT {
        s >> 4
    } else {
        // SAFETY: s < SMALL_MAX, so s >> COARSE_SHIFT < COARSE_INDEX.len().
        unsafe { *COARSE_INDEX.get_unchecked(s >> COARSE_SHIFT) as usize }
    }
}

/// The coarse classes' size steps are at least FINE_LIMIT / 4, so `(size - 1) >> COARSE_SHIFT`
/// never straddles a class boundary.
const COARSE_SHIFT: usize = LG_FINE - 2;
const COARSE_INDEX: [u8; SMALL_MAX >> COARSE_SHIFT] = {
    let mut t = [0u8; SMALL_MAX >> COARSE_SHIFT];
    let mut i = FINE_LIMIT >> COARSE_SHIFT;
    while i < t.len() {
        let s = i << COARSE_SHIFT; // any s with this index: the class is the same
        let lg = (usize::BITS - 1 - s.leading_zeros()) as usize; // floor(log2(s)), >= LG_FINE here
        t[i] = (FINE_CLASSES + (lg - LG_FINE) * 4 + ((s >> (lg - 2)) & 3)) as u8;
        i += 1;
    }
    t
};

const fn compute_size(class: usize) -> usize {
    if class < FINE_CLASSES {
        (class + 1) * 16
    } else {
        let k = class - FINE_CLASSES;
        let lg = LG_FINE + k / 4;
        (1 << lg) + ((k % 4) + 1) * (1 << (lg - 2))
    }
}

const SIZES: [u32; NUM_CLASSES] = {
    let mut t = [0u32; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = compute_size(c) as u32;
        c += 1;
    }
    t
};

/// Object size of `class` (`class < NUM_CLASSES`).
#[inline(always)]
pub fn size_of(class: usize) -> usize {
    // SAFETY: every caller derives `class` from `class_of` or a run tag written from it, both < NUM_CLASSES.
    unsafe { *SIZES.get_unchecked(class) as usize }
}

/// Most objects in one batch (`batch_of` never exceeds it).
pub const BATCH_MAX: usize = 32;

/// Bytes a batch of mid-size objects spans: 32 KiB, so a spill or refill of 1-2 KiB objects moves
/// 16-32 of them per lock hold (8 KiB measured NO-GO, docs/decisions.md).
const BATCH_BYTES: usize = 32768;

/// Classes above this size are "big": with random sizes most refills come from them (a 64 KiB
/// bound would hold 2-12 objects), so they move bigger batches and cache up to four of them
/// (docs/decisions.md, `big-batches`).
pub const BIG_FROM: usize = 4096;

/// Bytes a batch of big classes spans: a 16 KiB class moves 4 objects per lock hold instead of 2.
const BIG_BATCH_BYTES: usize = 65536;

/// The first big class (`is_big`).
pub const FIRST_BIG: usize = {
    let mut c = 0;
    while compute_size(c) <= BIG_FROM {
        c += 1;
    }
    c
};

/// Whether `class` is big (objects above BIG_FROM).
#[inline]
pub fn is_big(class: usize) -> bool {
    class >= FIRST_BIG
}

/// Objects moved per refill, spill and remote batch: enough to amortise a lock hold, few enough
/// that a batch of large objects stays near BATCH_BYTES (BIG_BATCH_BYTES for big classes).
#[inline]
pub fn batch_of(class: usize) -> u32 {
    let bytes = if is_big(class) {
        BIG_BATCH_BYTES
    } else {
        BATCH_BYTES
    };
    (bytes / size_of(class)).clamp(2, BATCH_MAX) as u32
}

/// Smallest class whose objects are naturally aligned to `align` (a power of two) and hold `size`
/// bytes, if any: objects sit at multiples of the class size from a 64 KiB-aligned run start.
pub fn class_for_aligned(size: usize, align: usize) -> Option<usize> {
    let need = if size > align { size } else { align };
    if need > SMALL_MAX {
        return None;
    }
    let mut c = class_of(need);
    while c < NUM_CLASSES {
        if size_of(c).is_multiple_of(align) {
            return Some(c);
        }
        c += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_class_is_small_max() {
        assert_eq!(size_of(NUM_CLASSES - 1), SMALL_MAX);
        assert_eq!(class_of(SMALL_MAX), NUM_CLASSES - 1);
    }

    #[test]
    fn every_size_maps_to_the_smallest_fitting_class() {
        for size in 0..=SMALL_MAX {
            let c = class_of(size);
            assert!(c < NUM_CLASSES, "size {size}");
            assert!(size_of(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(
                    size_of(c - 1) < size.max(1),
                    "size {size} fits class {}",
                    c - 1
                );
            }
        }
    }

    #[test]
    fn classes_round_trip_and_grow() {
        for c in 0..NUM_CLASSES {
            assert_eq!(class_of(size_of(c)), c);
            assert_eq!(size_of(c) % 16, 0);
            if c > 0 {
                assert!(size_of(c) > size_of(c - 1));
            }
        }
        assert_eq!(size_of(0), 16);
        assert_eq!(size_of(1), 32);
        assert_eq!(class_of(1025), class_of(1280));
    }

    #[test]
    fn fine_steps_at_the_low_end() {
        for c in 1..FINE_CLASSES {
            assert_eq!(size_of(c) - size_of(c - 1), 16);
        }
    }

    #[test]
    fn aligned_classes_are_aligned() {
        for align in [16usize, 32, 64, 128, 256, 4096, 32768] {
            for size in [1usize, 17, 100, 1000, 5000, 30000] {
                match class_for_aligned(size, align) {
                    Some(c) => {
                        assert_eq!(size_of(c) % align, 0);
                        assert!(size_of(c) >= size);
                    }
                    None => assert!(size.max(align) > SMALL_MAX),
                }
            }
        }
        assert_eq!(class_for_aligned(10, 65536), None);
    }

    #[test]
    fn batches_are_bounded() {
        for c in 0..NUM_CLASSES {
            let b = batch_of(c);
            assert!((2..=32).contains(&b));
        }
    }
}
