//! Per-row statistics over the runs of one (preset, allocator) pair.

/// Median, min and max of the successful runs' Mops/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// None when there is no sample (every run crashed). The median of an even count is the mean of
/// the two middle values.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    Some(Summary {
        median: crate::stats::median(samples)?,
        min: samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// `value / baseline`, None when either is missing or the baseline is not positive.
pub fn ratio(value: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (value, baseline) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

/// `items` rotated left by `round` (mod len): round r starts at item r, so over the rounds every
/// item is measured at every position.
pub fn rotated<T: Clone>(items: &[T], round: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let k = round % items.len();
    items[k..].iter().chain(&items[..k]).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_for_odd_even_and_unsorted_input() {
        assert_eq!(
            summarize(&[3.0, 1.0, 2.0]),
            Some(Summary {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            summarize(&[4.0, 1.0, 3.0, 2.0]),
            Some(Summary {
                median: 2.5,
                min: 1.0,
                max: 4.0
            })
        );
        assert_eq!(
            summarize(&[7.5]),
            Some(Summary {
                median: 7.5,
                min: 7.5,
                max: 7.5
            })
        );
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn ratio_needs_both_sides() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(3.0), None), None);
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
    }

    #[test]
    fn rotation_puts_every_item_first_once() {
        let items = ["a", "b", "c"];
        let firsts: Vec<_> = (0..3).map(|r| rotated(&items, r)[0]).collect();
        assert_eq!(firsts, ["a", "b", "c"]);
        assert_eq!(rotated(&items, 4), ["b", "c", "a"]);
        assert!(rotated::<u8>(&[], 1).is_empty());
    }
}
