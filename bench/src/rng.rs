//! The workload's PRNG: splitmix64, one independent stream per thread.
//!
//! Own code instead of the `rand` crate so the per-step cost is a handful of instructions that are
//! identical under every allocator, and so a `--seed` reproduces the exact operation sequence.

pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A stream for thread `index`: distinct threads get distinct, well-mixed starting states even
    /// for neighbouring seeds.
    pub fn for_thread(seed: u64, index: u64) -> Self {
        let mut mixer = SplitMix64 {
            state: seed ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(index + 1),
        };
        SplitMix64 {
            state: mixer.next_u64(),
        }
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` by the multiply-high method: one multiplication, no division, and a
    /// bias below 2^-64 per value, which no benchmark can see.
    #[inline(always)]
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline(always)]
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// In `lo..=hi` with every power-of-two range equally likely (uniform within it): many small
    /// values and a few large ones, as sizes and lifetimes in real programs are.
    #[inline(always)]
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let lo = lo.max(1);
        if hi <= lo {
            return lo.min(hi.max(1));
        }
        let (lo_bits, hi_bits) = (63 - lo.leading_zeros(), 63 - hi.leading_zeros());
        let bits = lo_bits + self.below((hi_bits - lo_bits + 1) as u64) as u32;
        let from = (1u64 << bits).max(lo);
        let to = ((1u64 << bits) - 1 + (1u64 << bits)).min(hi);
        self.between(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::for_thread(7, 0);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = rng.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "some value in 0..10 never drawn: {seen:?}"
        );
    }

    #[test]
    fn log_uniform_stays_in_range_and_favours_small_values() {
        let mut rng = SplitMix64::for_thread(9, 0);
        let draws: Vec<u64> = (0..20_000).map(|_| rng.log_uniform(16, 16384)).collect();
        assert!(draws.iter().all(|v| (16..=16384).contains(v)));
        let small = draws.iter().filter(|&&v| v < 128).count();
        let large = draws.iter().filter(|&&v| v >= 8192).count();
        // 16..127 is 3 of the 11 power-of-two ranges, 8192..16384 one.
        assert!(small > 4000 && large > 1000, "small={small} large={large}");
        assert!(draws.contains(&16) && draws.iter().any(|&v| v > 16000));
        assert_eq!(rng.log_uniform(7, 7), 7);
        assert!((1..=3).contains(&rng.log_uniform(0, 3)));
    }

    #[test]
    fn threads_and_seeds_get_different_streams() {
        let a: Vec<u64> = (0..4)
            .map(|_| SplitMix64::for_thread(1, 0).next_u64())
            .collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same seed and thread must reproduce"
        );
        let t0 = SplitMix64::for_thread(1, 0).next_u64();
        let t1 = SplitMix64::for_thread(1, 1).next_u64();
        let s2 = SplitMix64::for_thread(2, 0).next_u64();
        assert_ne!(t0, t1);
        assert_ne!(t0, s2);
    }
}
