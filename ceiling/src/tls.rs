//! A per-thread pointer slot read with the initial-exec TLS model (feature `initial-exec`, x86-64):
//! one `fs:`-relative load. std's `thread_local!` in a shared object compiles to the
//! general-dynamic model, a `__tls_get_addr` call on every access; the ceiling is only ever loaded
//! at startup (LD_PRELOAD), where the static TLS block the initial-exec model needs always exists.
use core::ffi::c_void;

#[cfg(all(target_arch = "x86_64", feature = "initial-exec"))]
mod imp {
    use core::ffi::c_void;

    // An 8-byte zero-initialized thread-local symbol in .tbss, hidden so the only relocation left
    // is the GOT entry holding its offset from the thread pointer.
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".balign 8",
        ".globl ceiling_heap_slot",
        ".hidden ceiling_heap_slot",
        ".type ceiling_heap_slot, @object",
        ".size ceiling_heap_slot, 8",
        "ceiling_heap_slot:",
        ".zero 8",
        ".popsection",
    );

    #[inline(always)]
    pub fn get() -> *mut c_void {
        let slot: *mut c_void;
        // SAFETY: loads this thread's slot: its thread-pointer offset from the GOT, then fs:offset.
        unsafe {
            core::arch::asm!(
                "mov {offset}, qword ptr [rip + ceiling_heap_slot@GOTTPOFF]",
                "mov {slot}, qword ptr fs:[{offset}]",
                offset = out(reg) _,
                slot = out(reg) slot,
                options(nostack, preserves_flags, readonly),
            );
        }
        slot
    }

    #[inline(always)]
    pub fn set(value: *mut c_void) {
        // SAFETY: stores to this thread's slot, addressed as in `get`.
        unsafe {
            core::arch::asm!(
                "mov {offset}, qword ptr [rip + ceiling_heap_slot@GOTTPOFF]",
                "mov qword ptr fs:[{offset}], {value}",
                offset = out(reg) _,
                value = in(reg) value,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", feature = "initial-exec")))]
mod imp {
    use core::cell::Cell;
    use core::ffi::c_void;

    std::thread_local! {
        static SLOT: Cell<*mut c_void> = const { Cell::new(core::ptr::null_mut()) };
    }

    #[inline(always)]
    pub fn get() -> *mut c_void {
        SLOT.with(Cell::get)
    }

    #[inline(always)]
    pub fn set(value: *mut c_void) {
        SLOT.with(|s| s.set(value))
    }
}

/// This thread's cached pointer (null until `set`).
#[inline(always)]
pub fn get() -> *mut c_void {
    imp::get()
}

pub fn set(value: *mut c_void) {
    imp::set(value)
}
