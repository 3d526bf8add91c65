//! Global registry of live blocks, sharded by 64 KiB chunk of address space: a block is entered in the
//! shard of every chunk it touches, so two overlapping blocks always meet in at least one shard, and the
//! check-then-insert in that shard happens under one lock. Overlap detection is therefore exact, not
//! sampled, whatever threads the two blocks belong to.
//!
//! Callers unregister a block before handing it back to the allocator and register after receiving
//! one, so a legitimately reused address never looks like an overlap.

use std::collections::BTreeMap;
use std::sync::Mutex;

const CHUNK_SHIFT: u32 = 16;
const SHARDS: usize = 256;

pub struct Registry {
    shards: Vec<Mutex<BTreeMap<usize, usize>>>,
}

/// Two live blocks that share bytes: `[start, end)` each.
#[derive(Debug)]
pub struct Overlap {
    pub new: (usize, usize),
    pub live: (usize, usize),
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(BTreeMap::new())).collect(),
        }
    }

    /// Distinct shards touched by `[start, end)`, in ascending order (one lock at a time, never nested).
    fn shards_of(start: usize, end: usize) -> Vec<usize> {
        let first = start >> CHUNK_SHIFT;
        let last = (end.max(start + 1) - 1) >> CHUNK_SHIFT;
        let mut shards: Vec<usize> = (first..=last.min(first + SHARDS))
            .map(|c| c.wrapping_mul(0x9E37_79B9) % SHARDS)
            .collect();
        shards.sort_unstable();
        shards.dedup();
        shards
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, BTreeMap<usize, usize>> {
        // A poisoned shard means another thread already failed; its data is still consistent.
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters `[start, end)`; refuses it if it overlaps a registered block.
    pub fn register(&self, start: usize, end: usize) -> Result<(), Overlap> {
        let shards = Self::shards_of(start, end);
        for (done, &shard) in shards.iter().enumerate() {
            let mut map = self.lock(shard);
            // Registered blocks are disjoint, so only the last one starting before `end` can overlap.
            if let Some((&s, &e)) = map.range(..end.max(start + 1)).next_back() {
                if e > start {
                    drop(map);
                    for &undo in &shards[..done] {
                        self.lock(undo).remove(&start);
                    }
                    return Err(Overlap {
                        new: (start, end),
                        live: (s, e),
                    });
                }
            }
            map.insert(start, end);
        }
        Ok(())
    }

    /// Removes a block entered by `register`; false if it was not there (a bookkeeping bug).
    pub fn unregister(&self, start: usize, end: usize) -> bool {
        let mut found = true;
        for shard in Self::shards_of(start, end) {
            found &= self.lock(shard).remove(&start) == Some(end);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_are_refused_across_chunks() {
        let r = Registry::new();
        r.register(0x10_0000, 0x10_0040).unwrap();
        r.register(0x10_0040, 0x10_0080).unwrap();
        // A large block spanning many chunks that clips the end of the first small one.
        let err = r.register(0x0F_0000, 0x10_0010).unwrap_err();
        assert_eq!(err.live, (0x10_0000, 0x10_0040));
        // Refused blocks leave nothing behind: the range just below is still free.
        r.register(0x0F_0000, 0x10_0000).unwrap();
        assert!(r.register(0x10_007F, 0x10_0100).is_err());
        assert!(r.unregister(0x10_0040, 0x10_0080));
        r.register(0x10_007F, 0x10_0100).unwrap();
        assert!(!r.unregister(0x20_0000, 0x20_0010));
    }

    #[test]
    fn identical_block_twice_is_an_overlap() {
        let r = Registry::new();
        r.register(0x5000, 0x5010).unwrap();
        assert!(r.register(0x5000, 0x5010).is_err());
        assert!(r.unregister(0x5000, 0x5010));
        r.register(0x5000, 0x5010).unwrap();
    }
}
