//! Every compile-time knob of hz3, as a constant: code branches with a plain `if config::X`, so
//! both arms are type-checked in every build and the optimiser drops the dead one. `#[cfg]` stays
//! only where an item cannot exist in the other build (probes counter storage and its exported
//! symbols, the C ABI, the loom model switch in `sync`, each `inject-*` site's delay, the central
//! pool's padding attribute, and the portable fallbacks' TLS slot and futex call).

/// Lane `fast`: thread caches over the per-class futex-mutex central pool alone.
pub const FAST: bool = cfg!(feature = "fast");
/// Lane `scale`: as `fast`, plus the transfer cache of whole batches in front of the central pool.
pub const SCALE: bool = cfg!(feature = "scale");
/// The lane's name, as `hz3::LANE` and the C `hz3_lane()` report it.
pub const LANE: &str = if FAST { "fast" } else { "scale" };
/// Fail fast on misuse and corruption (`failfast.rs`).
pub const FAILFAST: bool = cfg!(feature = "failfast");
/// Event counters (`probes.rs`); off, `Counters` is zero-sized and every count is a no-op.
pub const PROBES: bool = cfg!(feature = "probes");
/// A/B arm: a block realloc moves is placed by best fit like any other (`large::alloc_growing`).
pub const REALLOC_BEST_FIT: bool = cfg!(feature = "realloc-best-fit");
/// A/B arm: merged free extents keep the earlier stamp instead of the byte-weighted one
/// (`large::merged_stamp`).
pub const DECAY_EARLIEST_STAMP: bool = cfg!(feature = "decay-earliest-stamp");

/// Thread-cache bounds adapt per class (`heap`, peak RSS, docs/decisions.md): one batch at first,
/// up a batch on a refill right after a spill (up to the most), down a batch on a second spill with
/// no refill between. The A/B arm `fixed-caps` keeps every bound at its most from the start.
pub const ADAPTIVE_CAPS: bool = !cfg!(feature = "fixed-caps");
/// A/B arm `cap-floor-half`: adaptive bounds drop to half a batch instead of one batch (less held by
/// freeing-only threads, twice their spills).
pub const CAP_FLOOR_HALF: bool = cfg!(feature = "cap-floor-half");

// Touched-gap A/B arms (issue 16, docs/decisions.md "Touched gap (issue 16)").
/// Batches every bin holds whatever its class size (`heap`), `None` for the default bound (64 KiB
/// a class, one to four batches): with `deep-bins` four, with `deep-bins-16` sixteen (at most the
/// bin's 127 slots). Classes above 4 KiB, which the byte bound leaves at one or two batches, then
/// refill and spill (a transfer-cache lock line taken from another core each) less often.
pub const DEEP_BIN_BATCHES: Option<usize> = if cfg!(feature = "deep-bins-16") {
    Some(16)
} else if cfg!(feature = "deep-bins") {
    Some(4)
} else {
    None
};

#[cfg(all(feature = "fast", feature = "scale"))]
compile_error!("hz3: pick exactly one lane: features `fast` and `scale` are both on (use --no-default-features --features fast)");
#[cfg(not(any(feature = "fast", feature = "scale")))]
compile_error!("hz3: pick exactly one lane: enable feature `fast` or `scale`");
