//! Injected delay: a busy-wait of a known length inside exactly one box, so that `hz3-analyze gap`
//! can be checked against a cost whose place and size are known (scripts/validate-attribution).
//!
//! Each box that can be delayed carries one hook line, `crate::inject::delay!("inject-<site>");`,
//! which expands to nothing unless the cargo feature of that name is on. The length is
//! `HZ3_INJECT_NS` from the build environment (default `DEFAULT_NS`); a value that is not a
//! plain decimal number fails the build, so a typo cannot silently inject the default.
//!
//! Why a macro rather than a function: `hz3-analyze` charges a sample to the innermost frame a
//! box rule matches, and with `--call-graph dwarf` perf lists inlined functions as frames too.
//! A `hz3::inject::spin` frame, inlined or not, would therefore land in `hz3.api` (the `hz3::*`
//! catch-all) instead of the box under test. The macro's loop has no frame of its own: its
//! instructions belong to the function holding the hook line (itself a frame, inlined or not),
//! and the only frames it adds are core's (`_rdtsc`, the atomic load), which no rule matches.
//!
//! The clock is the TSC, converted once against CLOCK_MONOTONIC: reading clock_gettime in the
//! loop costs tens of nanoseconds per turn (more where the VM clock is a syscall), so the wait
//! would overshoot by up to one read. The loop is bare: `pause` lengthens each turn and slows a
//! sibling hyperthread, which moves cost out of the box (docs/decisions.md, attribution).
#![cfg_attr(not(feature = "inject"), allow(dead_code))]

/// Nanoseconds waited per hook pass when `HZ3_INJECT_NS` is not set at build time.
pub const DEFAULT_NS: u64 = 300;

/// Nanoseconds waited per hook pass in this build.
pub const INJECT_NS: u64 = match option_env!("HZ3_INJECT_NS") {
    Some(text) => parse_ns(text),
    None => DEFAULT_NS,
};

/// Parses a decimal number of nanoseconds at compile time; anything else stops the build.
const fn parse_ns(text: &str) -> u64 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        panic!("HZ3_INJECT_NS is empty: give a number of nanoseconds, e.g. HZ3_INJECT_NS=300");
    }
    let mut value: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        if !digit.is_ascii_digit() {
            panic!("HZ3_INJECT_NS must be a plain decimal number of nanoseconds (digits only)");
        }
        value = match value.checked_mul(10) {
            Some(v) => match v.checked_add((digit - b'0') as u64) {
                Some(v) => v,
                None => panic!("HZ3_INJECT_NS is too large"),
            },
            None => panic!("HZ3_INJECT_NS is too large"),
        };
        i += 1;
    }
    if value == 0 || value > MAX_NS {
        panic!("HZ3_INJECT_NS must be between 1 and 1000000 (one millisecond)");
    }
    value
}

/// One millisecond: a longer wait per pass would measure the scheduler, not the box.
const MAX_NS: u64 = 1_000_000;

#[cfg(feature = "inject")]
pub use on::{calibrate, TICKS};

#[cfg(all(feature = "inject", not(target_arch = "x86_64")))]
compile_error!("hz3: the inject-* features time their wait with the x86-64 TSC (rdtsc)");

#[cfg(feature = "inject")]
mod on {
    use super::INJECT_NS;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// TSC ticks of one wait; 0 until the first hook pass converts INJECT_NS.
    pub static TICKS: AtomicU64 = AtomicU64::new(0);

    /// How long the TSC is watched against CLOCK_MONOTONIC: long enough that the two clock reads'
    /// own cost (tens of ns) is under 0.01% of it, short enough to be noise in the run's CPU time.
    const CALIBRATION_NS: u64 = 1_000_000;

    fn monotonic_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC needs no other state.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            crate::os::fail("inject", "clock_gettime(CLOCK_MONOTONIC) failed");
        }
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    /// Converts INJECT_NS to TSC ticks (spinning CALIBRATION_NS once), stores and returns them.
    /// Threads that race here each store an equally good answer.
    #[cold]
    #[inline(never)]
    pub fn calibrate() -> u64 {
        let t0 = monotonic_ns();
        // SAFETY: rdtsc reads the time-stamp counter and has no memory effects.
        let c0 = unsafe { core::arch::x86_64::_rdtsc() };
        let mut t1 = t0;
        while t1.wrapping_sub(t0) < CALIBRATION_NS {
            t1 = monotonic_ns();
        }
        // SAFETY: as above.
        let c1 = unsafe { core::arch::x86_64::_rdtsc() };
        let ticks = (c1.wrapping_sub(c0) as u128 * INJECT_NS as u128 / (t1 - t0) as u128) as u64;
        let ticks = ticks.max(1);
        TICKS.store(ticks, Ordering::Relaxed);
        ticks
    }
}

/// The hook line: `crate::inject::delay!("inject-<site>");` busy-waits INJECT_NS when the feature
/// named by the literal is on, and is nothing otherwise.
macro_rules! delay {
    ($feature:literal) => {
        #[cfg(feature = $feature)]
        {
            let ticks = match $crate::inject::TICKS.load(core::sync::atomic::Ordering::Relaxed) {
                0 => $crate::inject::calibrate(),
                t => t,
            };
            // SAFETY: rdtsc reads the time-stamp counter and has no memory effects.
            let start = unsafe { core::arch::x86_64::_rdtsc() };
            // SAFETY: as above.
            while unsafe { core::arch::x86_64::_rdtsc() }.wrapping_sub(start) < ticks {}
        }
    };
}
pub(crate) use delay;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimal_nanoseconds() {
        assert_eq!(parse_ns("300"), 300);
        assert_eq!(parse_ns("1000000"), MAX_NS);
        assert_eq!(parse_ns("0001"), 1);
    }

    #[test]
    fn rejects_what_is_not_a_wait_length() {
        for bad in [
            "",
            "0",
            "-5",
            "3e2",
            "300ns",
            " 300",
            "1000001",
            "99999999999999999999999",
        ] {
            let result = std::panic::catch_unwind(|| parse_ns(bad));
            assert!(result.is_err(), "{bad:?} was accepted");
        }
    }
}
