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
/// A free of an object another live heap allocated goes back to that heap in batches instead of
/// into the freeing cache, and refills prefer the caller's own batches and runs (`remote.rs`).
pub const HOME: bool = cfg!(feature = "home-runs");
/// Fail fast on misuse and corruption (`failfast.rs`).
pub const FAILFAST: bool = cfg!(feature = "failfast");
/// Classes above `size_class::BIG_FROM` move bigger batches and cache up to four of them (A/B).
pub const BIG_BATCHES: bool = cfg!(feature = "big-batches");
/// With `BIG_BATCHES`: a thread's big-class bounds share one byte budget (`heap::BIG_BUDGET`).
pub const BIG_BUDGET: bool = cfg!(feature = "big-budget");
/// Event counters (`probes.rs`); off, `Counters` is zero-sized and every count is a no-op.
pub const PROBES: bool = cfg!(feature = "probes");

#[cfg(all(feature = "fast", feature = "scale"))]
compile_error!("hz3: pick exactly one lane: features `fast` and `scale` are both on (use --no-default-features --features fast)");
#[cfg(not(any(feature = "fast", feature = "scale")))]
compile_error!("hz3: pick exactly one lane: enable feature `fast` or `scale`");
