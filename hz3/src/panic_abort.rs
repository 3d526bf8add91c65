//! The preload `.so`'s panic handler: one line on stderr naming the source location, then abort.
//!
//! A panic inside malloc must not run std's hook (which formats and allocates, possibly with a
//! pool lock held) nor unwind into C. hz3's allocation paths are written not to panic (unchecked
//! indexing with SAFETY notes where an index is proven in range); this handler is the last resort
//! if one does, and it keeps std's panic runtime out of the library (`tests/preload_symbols.rs`).

use core::panic::PanicInfo;

#[panic_handler]
fn on_panic(info: &PanicInfo) -> ! {
    let Some(at) = info.location() else {
        crate::os::fail("panic", "bug in hz3");
    };
    let mut digits = [0u8; 20];
    let line = ::probes::dump::decimal(at.line() as u64, &mut digits);
    crate::os::fail_lines(
        "panic",
        "bug in hz3",
        &[b" at ", at.file().as_bytes(), b":", line],
    )
}
