//! Statistics over a handful of benchmark runs: the median, seeded bootstrap intervals of medians
//! and of ratios of medians, a one-sided Mann–Whitney test, and how many runs an interval needs.
//!
//! Five runs on a shared machine are few and far from normal (a run that lost its cores is slow,
//! never fast), so nothing here assumes a distribution: intervals are percentile bootstraps, the
//! test is rank-based. Every resampling draws from a [`Rng`] seeded by the caller, so a report
//! computed twice from the same samples prints the same intervals.

/// Confidence of every interval the matrix and the guard print.
pub const LEVEL: f64 = 0.95;
/// Bootstrap resamples per interval: the 2.5% and 97.5% quantiles of 2000 draws move by well under
/// a percent of the interval's width between seeds.
pub const RESAMPLES: usize = 2000;

/// The median of the values (the mean of the middle two for an even count); None for no value.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(median_of_sorted(&sorted))
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// SplitMix64: a tiny, well-mixed generator; reproducibility, not cryptography, is the point.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed derived from text (a row's preset and allocator), so every row has its own stream
    /// and the same row gets the same one in every run of the tool.
    pub fn for_key(key: &str) -> Rng {
        // FNV-1a: stable across Rust versions, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is below 2^-50 for the n used here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller), for synthetic samples in tests and examples.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A two-sided interval at [`LEVEL`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

/// Percentile interval of `RESAMPLES` draws of `statistic`.
fn percentile_interval(mut draws: Vec<f64>) -> Option<Interval> {
    draws.retain(|d| d.is_finite());
    if draws.is_empty() {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |q: f64| draws[((draws.len() - 1) as f64 * q).round() as usize];
    Some(Interval {
        low: at(tail),
        high: at(1.0 - tail),
    })
}

/// One bootstrap resample of `values`, written into `out`, and its median.
fn resampled_median(values: &[f64], rng: &mut Rng, out: &mut Vec<f64>) -> f64 {
    out.clear();
    out.extend((0..values.len()).map(|_| values[rng.below(values.len())]));
    out.sort_by(f64::total_cmp);
    median_of_sorted(out)
}

/// Bootstrap interval of the median of `values`; None without a value.
pub fn median_interval(values: &[f64], rng: &mut Rng) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    let mut buf = Vec::with_capacity(values.len());
    percentile_interval(
        (0..RESAMPLES)
            .map(|_| resampled_median(values, rng, &mut buf))
            .collect(),
    )
}

/// Samples of one quantity and of its reference (its anchor), measured in the same rounds.
///
/// When both sides have one sample per round, in round order (`paired`), a resample draws rounds,
/// keeping each round's two samples together: a round the whole machine ran slow moves both, and
/// the ratio keeps its distance. Otherwise (a crash left a side short) the two are resampled apart.
#[derive(Clone, Copy, Debug)]
pub struct Pair<'a> {
    pub value: &'a [f64],
    pub reference: &'a [f64],
    pub paired: bool,
}

impl<'a> Pair<'a> {
    /// Paired when both sides ran every round (no crash on either, so sample i is round i).
    pub fn new(value: &'a [f64], reference: &'a [f64], every_round_ran: bool) -> Pair<'a> {
        Pair {
            value,
            reference,
            paired: every_round_ran && value.len() == reference.len(),
        }
    }

    /// `median(value) / median(reference)`.
    pub fn ratio(&self) -> Option<f64> {
        let (v, r) = (median(self.value)?, median(self.reference)?);
        (r > 0.0).then(|| v / r)
    }

    fn resampled_ratio(&self, rng: &mut Rng, a: &mut Vec<f64>, b: &mut Vec<f64>) -> f64 {
        if self.paired {
            a.clear();
            b.clear();
            for _ in 0..self.value.len() {
                let i = rng.below(self.value.len());
                a.push(self.value[i]);
                b.push(self.reference[i]);
            }
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            median_of_sorted(a) / median_of_sorted(b)
        } else {
            resampled_median(self.value, rng, a) / resampled_median(self.reference, rng, b)
        }
    }

    fn usable(&self) -> bool {
        !self.value.is_empty() && !self.reference.is_empty()
    }
}

/// Bootstrap interval of `median(value) / median(reference)`.
pub fn ratio_interval(pair: Pair, rng: &mut Rng) -> Option<Interval> {
    if !pair.usable() {
        return None;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    percentile_interval(
        (0..RESAMPLES)
            .map(|_| pair.resampled_ratio(rng, &mut a, &mut b))
            .collect(),
    )
}

/// The relative change of a ratio to an anchor between two sessions: `now.ratio / before.ratio - 1`
/// (−0.12 = 12% slower relative to the anchor), with its bootstrap interval (each session
/// resampled on its own).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub estimate: f64,
    pub interval: Interval,
}

pub fn change(before: Pair, now: Pair, rng: &mut Rng) -> Option<Change> {
    let estimate = now.ratio()? / before.ratio()? - 1.0;
    if !before.usable() || !now.usable() {
        return None;
    }
    let mut bufs = (Vec::new(), Vec::new());
    let draws = (0..RESAMPLES)
        .map(|_| {
            let b = before.resampled_ratio(rng, &mut bufs.0, &mut bufs.1);
            let n = now.resampled_ratio(rng, &mut bufs.0, &mut bufs.1);
            n / b - 1.0
        })
        .collect();
    Some(Change {
        estimate,
        interval: percentile_interval(draws)?,
    })
}

/// Runs per side after which an interval now `half_width` wide at `runs` runs would be
/// `target` wide on each side: the width of a median's interval shrinks as 1/√runs. None when the
/// interval is already that narrow or has no width to scale.
pub fn runs_needed(runs: usize, half_width: f64, target: f64) -> Option<usize> {
    if runs == 0 || target <= 0.0 || half_width.is_nan() || half_width <= target {
        return None;
    }
    let needed = runs as f64 * (half_width / target).powi(2);
    Some(needed.ceil().min(1e6) as usize)
}

/// One-sided Mann–Whitney U test that `x` tends to be smaller than `y`: the p-value of seeing a U
/// (pairs with x < y, ties half) at least this large if both came from one distribution. Exact
/// (by counting rank arrangements) for up to 30 samples a side without ties, the normal
/// approximation with a continuity and tie correction otherwise. None if a side is empty.
pub fn mann_whitney_less(x: &[f64], y: &[f64]) -> Option<f64> {
    let (m, n) = (x.len(), y.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut u = 0.0;
    let mut ties = false;
    for a in x {
        for b in y {
            if a < b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
                ties = true;
            }
        }
    }
    if !ties && m <= 30 && n <= 30 {
        let counts = u_distribution(m, n);
        let total: f64 = counts.iter().sum();
        let at_least: f64 = counts[u as usize..].iter().sum();
        return Some(at_least / total);
    }
    let (mf, nf) = (m as f64, n as f64);
    let mean = mf * nf / 2.0;
    let mut all: Vec<f64> = x.iter().chain(y).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = all[i..].iter().take_while(|v| **v == all[i]).count();
        tie_term += (j * j * j - j) as f64;
        i += j;
    }
    let big_n = mf + nf;
    let var = mf * nf / 12.0 * ((big_n + 1.0) - tie_term / (big_n * (big_n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = (u - mean - 0.5) / var.sqrt();
    Some(normal_upper_tail(z))
}

/// How many of the C(m+n, m) arrangements of two samples give each U = 0..=m·n.
fn u_distribution(m: usize, n: usize) -> Vec<f64> {
    // f[i][j][u] for i x's and j y's: the largest value is either an x (adding no pair) or a
    // y (above all i x's, adding i pairs). Rolled over j, one table per i.
    let mut table: Vec<Vec<Vec<f64>>> = vec![vec![vec![1.0]; n + 1]; m + 1];
    for i in 1..=m {
        for j in 1..=n {
            let mut row = vec![0.0; i * j + 1];
            for (u, c) in table[i - 1][j].iter().enumerate() {
                row[u] += c;
            }
            for (u, c) in table[i][j - 1].iter().enumerate() {
                row[u + i] += c;
            }
            table[i][j] = row;
        }
    }
    std::mem::take(&mut table[m][n])
}

/// P(Z > z) for a standard normal Z (Abramowitz–Stegun 7.1.26 for erfc, error < 1.5e-7).
fn normal_upper_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_unsorted_and_empty_input() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn intervals_are_reproducible_and_hold_the_median() {
        let v = [10.0, 12.0, 11.0, 9.5, 30.0];
        let a = median_interval(&v, &mut Rng::for_key("p/x")).unwrap();
        let b = median_interval(&v, &mut Rng::for_key("p/x")).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        assert!(a.contains(11.0) && a.low >= 9.5 && a.high <= 30.0, "{a:?}");
        assert_eq!(median_interval(&[], &mut Rng::new(1)), None);
        let one = median_interval(&[4.0], &mut Rng::new(1)).unwrap();
        assert_eq!((one.low, one.high), (4.0, 4.0));
    }

    #[test]
    fn pairing_cancels_a_round_that_slowed_both_sides() {
        // Round 3 ran at a third of the speed for both: the ratio is 2 in every round.
        let value = [20.0, 22.0, 7.0, 21.0, 19.0];
        let reference = [10.0, 11.0, 3.5, 10.5, 9.5];
        let pair = Pair::new(&value, &reference, true);
        let paired = ratio_interval(pair, &mut Rng::new(7)).unwrap();
        assert!(
            (paired.low - 2.0).abs() < 1e-12 && (paired.high - 2.0).abs() < 1e-12,
            "{paired:?}"
        );
        let apart = ratio_interval(Pair::new(&value, &reference, false), &mut Rng::new(7)).unwrap();
        assert!(apart.high - apart.low > 0.1, "unpaired: {apart:?}");
    }

    #[test]
    fn runs_needed_scales_with_the_square_of_the_width() {
        assert_eq!(runs_needed(5, 0.10, 0.05), Some(20));
        assert_eq!(runs_needed(5, 0.04, 0.05), None);
        assert_eq!(runs_needed(0, 0.10, 0.05), None);
        assert_eq!(runs_needed(3, 0.10, 0.0), None);
    }

    #[test]
    fn mann_whitney_exact_and_approximate() {
        // All of x below all of y: the most extreme of C(10,5) = 252 arrangements.
        let p = mann_whitney_less(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!((p - 1.0 / 252.0).abs() < 1e-12, "{p}");
        let p = mann_whitney_less(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(p, 1.0);
        // Interleaved: nothing to reject.
        let p = mann_whitney_less(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]).unwrap();
        assert!(p > 0.2, "{p}");
        // With ties the normal approximation answers, in the same direction.
        let p = mann_whitney_less(&[1.0, 1.0, 2.0, 2.0, 3.0], &[3.0, 4.0, 5.0, 5.0, 6.0]).unwrap();
        assert!(p < 0.02, "{p}");
        assert_eq!(mann_whitney_less(&[], &[1.0]), None);
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn the_rng_is_uniform_enough() {
        let mut rng = Rng::new(42);
        let n = 100_000;
        let mean = (0..n).map(|_| rng.unit()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let m = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.03, "{m} {var}");
    }
}
