//! The byte pattern every live object carries: derived from a key address, so a block that is handed
//! out twice, or written by whoever else holds it, shows bytes that belong to another address.

/// The 8 pattern bytes for the word at `key + offset` (`offset` a multiple of 8).
fn word(key: usize, offset: usize) -> u64 {
    let mut v = (key.wrapping_add(offset) as u64) ^ 0x9E37_79B9_7F4A_7C15;
    v = (v ^ (v >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v ^ (v >> 27)
}

/// Writes the pattern keyed by `key` over `len` bytes at `ptr`.
///
/// # Safety
/// `ptr..ptr + len` must be writable memory owned by the caller.
pub unsafe fn fill(ptr: *mut u8, len: usize, key: usize) {
    let mut off = 0;
    while off + 8 <= len {
        // SAFETY: within the caller's block; blocks need not be 8-aligned, hence unaligned writes.
        unsafe { ptr.add(off).cast::<u64>().write_unaligned(word(key, off)) };
        off += 8;
    }
    let tail = word(key, off).to_le_bytes();
    for (i, b) in tail.iter().take(len - off).enumerate() {
        // SAFETY: off + i < len.
        unsafe { ptr.add(off + i).write(*b) };
    }
}

/// Offset of the first byte of `ptr..ptr + len` that does not carry the pattern keyed by `key`.
///
/// # Safety
/// `ptr..ptr + len` must be readable memory owned by the caller.
pub unsafe fn first_mismatch(ptr: *const u8, len: usize, key: usize) -> Option<usize> {
    let mut off = 0;
    while off + 8 <= len {
        // SAFETY: within the caller's block.
        let got = unsafe { ptr.add(off).cast::<u64>().read_unaligned() };
        let want = word(key, off);
        if got != want {
            let byte = (got ^ want)
                .to_le_bytes()
                .iter()
                .position(|&x| x != 0)
                .unwrap_or(0);
            return Some(off + byte);
        }
        off += 8;
    }
    let tail = word(key, off).to_le_bytes();
    (0..len - off)
        .find(|&i| {
            // SAFETY: off + i < len.
            unsafe { ptr.add(off + i).read() != tail[i] }
        })
        .map(|i| off + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_slice(buf: &mut [u8], key: usize) {
        // SAFETY: the slice is writable for its whole length.
        unsafe { fill(buf.as_mut_ptr(), buf.len(), key) }
    }

    fn mismatch(buf: &[u8], key: usize) -> Option<usize> {
        // SAFETY: the slice is readable for its whole length.
        unsafe { first_mismatch(buf.as_ptr(), buf.len(), key) }
    }

    #[test]
    fn detects_a_flipped_byte_anywhere() {
        for len in [1usize, 7, 8, 9, 63, 64, 100] {
            let mut buf = vec![0u8; len];
            let key = buf.as_ptr() as usize;
            fill_slice(&mut buf, key);
            assert_eq!(mismatch(&buf, key), None);
            for at in 0..len {
                buf[at] ^= 0x40;
                assert_eq!(mismatch(&buf, key), Some(at), "len {len}");
                buf[at] ^= 0x40;
            }
        }
    }

    #[test]
    fn another_key_does_not_match() {
        let mut buf = vec![0u8; 32];
        fill_slice(&mut buf, 0x1000);
        assert!(mismatch(&buf, 0x1010).is_some());
    }
}
