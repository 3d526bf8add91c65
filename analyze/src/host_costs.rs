//! What this machine charges for three things an allocator's layout trades in, besides
//! instructions: a cache line moved between cores ([`crate::core_round_trip`]), the page walk of a
//! TLB miss, and a page fault.
//!
//! None of the three has a box of its own in an attribution: perf's software events sample an
//! instruction, and these costs land on whichever instruction waited for them (a prefetch, the
//! program's `memset`, the kernel's fault handler). On the project's VM a walk costs about as much
//! as a line from the far core and a fault twenty times more (docs/decisions.md, "Page walks"), so
//! a reader comparing two allocators needs the machine's prices beside the boxes.
//!
//! The walk is measured as a difference: dependent reads of random lines of one region, mapped
//! once with 4 KiB pages and once with transparent huge pages. Same lines, same caches; only the
//! TLB differs. Without huge pages (THP `never`, or the kernel granted none) there is no
//! difference to take, and the walk is reported unknown rather than guessed.

use serde::Serialize;
use std::time::Instant;

/// The region the walk reads: 16 times the reach of a 2048-entry TLB of 4 KiB pages, so nearly
/// every read misses it, and 64 huge pages, which a second-level TLB holds. (A larger region's
/// page tables fit the caches less well, and its walks cost more: the figure is a price at this
/// footprint, about that of the 32-thread presets' objects.)
pub const WALK_REGION: usize = 128 << 20;
/// Reads timed per pass, each depending on the one before.
const WALK_READS: usize = 1 << 17;
/// Passes per page size, alternating, so a host that changes its mind mid-probe hits both alike;
/// the fastest pass of each counts (the least disturbed).
const WALK_PASSES: usize = 3;
/// The region the fault probe writes, one byte a page.
const FAULT_REGION: usize = 32 << 20;
const SMALL_PAGE: usize = 4096;
const HUGE_PAGE: usize = 2 << 20;
const LINE: usize = 64;

/// The machine's prices, each None when it could not be measured here.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HostCosts {
    /// One cache line's round trip between the first two CPUs this process may use.
    pub round_trip_ns: Option<f64>,
    pub round_trip_cpus: Option<(usize, usize)>,
    /// A dependent read of a random line of a 128 MiB region on 4 KiB pages (nearly every read
    /// misses the TLB).
    pub read_small_pages_ns: Option<f64>,
    /// The same reads on transparent huge pages.
    pub read_huge_pages_ns: Option<f64>,
    /// The difference: what a TLB miss's page walk adds to a read.
    pub page_walk_ns: Option<f64>,
    /// Writing a 4 KiB page of fresh anonymous memory for the first time.
    pub first_touch_us_per_page: Option<f64>,
    /// Writing it again after `madvise(MADV_DONTNEED)` gave it back: what a purged run costs when
    /// it is reused.
    pub refault_us_per_page: Option<f64>,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`'s chosen mode (always, madvise, never).
    pub thp: Option<String>,
    /// Whether a virtio balloon reports free pages to the host (then free 2 MiB blocks, what a THP
    /// fault takes, have been given back to the host and wait for it on first touch); None
    /// without a virtio balloon.
    pub free_page_reporting: Option<bool>,
}

impl HostCosts {
    /// Measures everything (about a second on the project's VM: the walk regions' first touch is
    /// most of it).
    pub fn measure() -> HostCosts {
        let cpus = crate::core_round_trip::first_pair();
        let round_trip_ns = cpus.and_then(crate::core_round_trip::measure);
        let walk = measure_walk();
        let faults = measure_faults();
        HostCosts {
            round_trip_ns,
            round_trip_cpus: cpus,
            read_small_pages_ns: walk.small,
            read_huge_pages_ns: walk.huge,
            page_walk_ns: walk.small.zip(walk.huge).map(|(s, h)| (s - h).max(0.0)),
            first_touch_us_per_page: faults.map(|f| f.0),
            refault_us_per_page: faults.map(|f| f.1),
            thp: thp_mode(std::fs::read_to_string(THP_ENABLED).ok().as_deref()),
            free_page_reporting: free_page_reporting(std::path::Path::new(VIRTIO_DEVICES)),
        }
    }
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    /// `len` bytes starting on a `HUGE_PAGE` boundary (so a huge-page mapping can be all huge
    /// pages), advised huge or not; None if the kernel refused the mapping.
    fn new(len: usize, huge: bool) -> Option<Mapping> {
        let total = len + HUGE_PAGE;
        // SAFETY: an anonymous mapping without MAP_FIXED only takes free address space.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let mapping = Mapping {
            base: raw.cast(),
            len: total,
        };
        let advice = if huge {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: advice on our own mapping changes no contents; a refusal (THP compiled out)
        // leaves the default, which the caller checks for huge pages anyway.
        unsafe { libc::madvise(raw, total, advice) };
        Some(mapping)
    }

    /// The first `HUGE_PAGE`-aligned address inside the mapping.
    fn aligned(&self) -> *mut u8 {
        let a = (self.base as usize + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
        a as *mut u8
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is exactly the mapping `new` made, and nothing refers into it now.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

struct Walk {
    small: Option<f64>,
    huge: Option<f64>,
}

fn measure_walk() -> Walk {
    let Some(small) = Chase::build(false) else {
        return Walk {
            small: None,
            huge: None,
        };
    };
    let huge = Chase::build(true).filter(|c| c.all_huge);
    let mut best_small = f64::INFINITY;
    let mut best_huge = f64::INFINITY;
    for _ in 0..WALK_PASSES {
        best_small = best_small.min(small.ns_per_read());
        if let Some(h) = &huge {
            best_huge = best_huge.min(h.ns_per_read());
        }
    }
    Walk {
        small: Some(best_small),
        huge: huge.map(|_| best_huge),
    }
}

/// A cycle through one random line of every 4 KiB page of a region, in random page order: each
/// line holds the address of the next, so every read waits for the one before.
struct Chase {
    /// Kept for the reads: unmapped when the chase is dropped.
    _mapping: Mapping,
    start: *const usize,
    /// Whether the kernel backed (nine tenths of) the region with huge pages (false for 4 KiB).
    all_huge: bool,
}

impl Chase {
    fn build(huge: bool) -> Option<Chase> {
        let mapping = Mapping::new(WALK_REGION, huge)?;
        let base = mapping.aligned();
        let pages = WALK_REGION / SMALL_PAGE;
        let mut rng = crate::stats::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut order: Vec<usize> = (0..pages).collect();
        for i in (1..pages).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let line_of = |page: usize, rng: &mut crate::stats::Rng| {
            let line = rng.below(SMALL_PAGE / LINE);
            // SAFETY: page < pages and line < SMALL_PAGE / LINE keep the address inside the region.
            unsafe { base.add(page * SMALL_PAGE + line * LINE) as *mut usize }
        };
        let lines: Vec<*mut usize> = order.iter().map(|&p| line_of(p, &mut rng)).collect();
        for (i, &line) in lines.iter().enumerate() {
            let next = lines[(i + 1) % lines.len()];
            // SAFETY: `line` is an aligned address inside the writable region.
            unsafe { line.write(next as usize) };
        }
        // Nine tenths: a few small pages (a huge page the kernel could not find at that moment)
        // move the average by little; a kernel that granted none leaves the walk unknown.
        let all_huge = huge && anon_huge_bytes(base as usize) >= WALK_REGION / 10 * 9;
        Some(Chase {
            start: lines[0],
            _mapping: mapping,
            all_huge,
        })
    }

    fn ns_per_read(&self) -> f64 {
        let mut p = self.start;
        let started = Instant::now();
        for _ in 0..WALK_READS {
            // SAFETY: every line of the cycle holds the address of another line of the live
            // mapping (`build`).
            p = unsafe { std::ptr::read_volatile(p) } as *const usize;
        }
        let ns = started.elapsed().as_nanos() as f64;
        std::hint::black_box(p);
        ns / WALK_READS as f64
    }
}

/// The bytes of transparent huge pages backing the mapping that contains `addr`
/// (`/proc/self/smaps`' AnonHugePages), 0 if unknown.
fn anon_huge_bytes(addr: usize) -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    anon_huge_kib_of(&smaps, addr) * 1024
}

/// AnonHugePages (KiB) of the smaps entry whose range holds `addr`.
fn anon_huge_kib_of(smaps: &str, addr: usize) -> usize {
    let mut inside = false;
    for line in smaps.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'));
        if let Some((lo, hi)) = range {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = lo <= addr && addr < hi;
                continue;
            }
        }
        if inside {
            if let Some(v) = line.strip_prefix("AnonHugePages:") {
                return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
    }
    0
}

/// First touch and refault, µs per 4 KiB page; None if the region could not be mapped.
fn measure_faults() -> Option<(f64, f64)> {
    let mapping = Mapping::new(FAULT_REGION, false)?;
    let base = mapping.aligned();
    let pages = FAULT_REGION / SMALL_PAGE;
    let touch = || {
        let started = Instant::now();
        for page in 0..pages {
            // SAFETY: inside the writable region.
            unsafe { std::ptr::write_volatile(base.add(page * SMALL_PAGE), 1u8) };
        }
        started.elapsed().as_nanos() as f64 / 1000.0 / pages as f64
    };
    let first = touch();
    // SAFETY: our own mapping; its contents are not needed.
    unsafe { libc::madvise(base.cast(), FAULT_REGION, libc::MADV_DONTNEED) };
    let again = touch();
    Some((first, again))
}

const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
const VIRTIO_DEVICES: &str = "/sys/bus/virtio/devices";

/// The bracketed choice of `always [madvise] never`.
fn thp_mode(text: Option<&str>) -> Option<String> {
    let text = text?;
    let open = text.find('[')?;
    let close = text[open..].find(']')? + open;
    Some(text[open + 1..close].to_string())
}

/// Virtio device id of a memory balloon, and its feature bit for free page reporting
/// (VIRTIO_BALLOON_F_REPORTING); `features` lists the negotiated bits as '0'/'1', bit 0 first.
const BALLOON_DEVICE: &str = "0x0005";
const REPORTING_BIT: usize = 5;

/// Some(on) for the first virtio balloon under `devices`, None without one.
fn free_page_reporting(devices: &std::path::Path) -> Option<bool> {
    let mut entries: Vec<_> = std::fs::read_dir(devices).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries.iter().find_map(|e| {
        let id = std::fs::read_to_string(e.path().join("device")).ok()?;
        if id.trim() != BALLOON_DEVICE {
            return None;
        }
        let features = std::fs::read_to_string(e.path().join("features")).ok()?;
        Some(features.trim().as_bytes().get(REPORTING_BIT) == Some(&b'1'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_mode_is_the_bracketed_word() {
        assert_eq!(
            thp_mode(Some("always [madvise] never\n")).as_deref(),
            Some("madvise")
        );
        assert_eq!(
            thp_mode(Some("[always] madvise never")).as_deref(),
            Some("always")
        );
        assert_eq!(thp_mode(Some("garbage")), None);
        assert_eq!(thp_mode(None), None);
    }

    #[test]
    fn the_balloon_is_found_among_virtio_devices_and_its_reporting_bit_read() {
        let dir = tempfile::tempdir().unwrap();
        let device = |name: &str, id: &str, features: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("device"), id).unwrap();
            std::fs::write(d.join("features"), features).unwrap();
        };
        device("virtio1", "0x0002\n", "00100010\n");
        assert_eq!(free_page_reporting(dir.path()), None, "no balloon: unknown");
        device("virtio0", "0x0005\n", "01100101\n");
        assert_eq!(free_page_reporting(dir.path()), Some(true));
        std::fs::write(dir.path().join("virtio0/features"), "01100001\n").unwrap();
        assert_eq!(free_page_reporting(dir.path()), Some(false));
        assert_eq!(free_page_reporting(&dir.path().join("absent")), None);
    }

    #[test]
    fn anon_huge_pages_are_read_from_the_entry_holding_the_address() {
        let smaps = "\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:      2048 kB
7f0000400000-7f0000800000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:         0 kB
";
        assert_eq!(anon_huge_kib_of(smaps, 0x7f00_0020_0000), 2048);
        assert_eq!(anon_huge_kib_of(smaps, 0x7f00_0040_0000), 0);
        assert_eq!(anon_huge_kib_of(smaps, 0x1000), 0);
    }

    /// The real probe on this machine: every figure it can take is positive, and a walk, when
    /// measured, is the difference of the two reads.
    #[test]
    fn the_probe_measures_this_machine() {
        let c = HostCosts::measure();
        let small = c
            .read_small_pages_ns
            .expect("4 KiB pages can always be mapped");
        assert!(small > 0.0 && small.is_finite(), "{c:?}");
        let (first, again) = (
            c.first_touch_us_per_page.expect("a fault region maps"),
            c.refault_us_per_page.expect("a fault region maps"),
        );
        assert!(first > 0.0 && again > 0.0, "{c:?}");
        if let (Some(huge), Some(walk)) = (c.read_huge_pages_ns, c.page_walk_ns) {
            assert!((walk - (small - huge).max(0.0)).abs() < 1e-9, "{c:?}");
        }
        assert_eq!(
            c.page_walk_ns.is_some(),
            c.read_huge_pages_ns.is_some(),
            "{c:?}"
        );
    }
}
