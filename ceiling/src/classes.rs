//! Size classes: 16-byte steps up to 128 B, then four classes per power of two up to 256 KiB
//! (at most 25% internal waste), computed with a leading-zero count instead of a table.

pub const CLASSES: usize = 52;
pub const MAX_SMALL: usize = 256 * 1024;

/// The smallest class holding `size` bytes; `size <= MAX_SMALL`.
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    if size <= 128 {
        return size.saturating_sub(1) >> 4;
    }
    let s = size - 1;
    let log2 = (usize::BITS - 1 - s.leading_zeros()) as usize; // >= 7
    let quarter = (s >> (log2 - 2)) & 3;
    8 + (log2 - 7) * 4 + quarter
}

/// Bytes in every block of `class`.
#[inline(always)]
pub fn class_size(class: usize) -> usize {
    if class < 8 {
        return (class + 1) * 16;
    }
    let k = class - 8;
    (5 + (k & 3)) << (k / 4 + 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_maps_to_the_smallest_class_that_holds_it() {
        assert_eq!(class_of(MAX_SMALL), CLASSES - 1);
        assert_eq!(class_size(CLASSES - 1), MAX_SMALL);
        for size in 0..=MAX_SMALL {
            let c = class_of(size);
            assert!(
                class_size(c) >= size.max(1),
                "size {size} -> class {c} of {}",
                class_size(c)
            );
            if c > 0 {
                assert!(
                    class_size(c - 1) < size,
                    "size {size} fits the smaller class {}",
                    c - 1
                );
            }
            assert_eq!(class_size(c) % 16, 0);
        }
    }
}
