//! The built-in box rules on the frame names the allocators really produce (from the recordings
//! this project made): each default box is reachable, and the stack rules hold.
use flamegraphs::{Classifier, Rules};

fn box_of(rules: &Rules, stack: &str) -> String {
    let mut c = Classifier::new(rules);
    let b = c.box_of_stack(stack);
    c.names()[b].clone()
}

#[test]
fn real_frame_names_map_to_their_boxes() {
    let rules = analyze::boxes::defaults();
    let bench = "hz3-bench;start_thread;bench::workload::worker";
    let cases = [
        ("hz3::heap::Heap::pop", "hz3.thread_cache"),
        (
            "malloc [libhz3_scale.so];hz3::api::malloc;hz3::size_class::class_of",
            "hz3.thread_cache",
        ),
        ("free [libhz3_scale.so];hz3::api::free", "hz3.thread_cache"),
        ("hz3::remote::flush_stash", "hz3.remote"),
        ("<hz3::transfer::TransferCache>::take", "hz3.transfer"),
        ("hz3::central::Central::pop_batch", "hz3.central"),
        ("hz3::slow_alloc::refill", "hz3.slow_alloc"),
        ("hz3::page_source::PageSource::fresh_run", "hz3.page_source"),
        ("hz3::large::alloc", "hz3.large"),
        ("hz3::api::free;hz3::page_map::tag_of", "hz3.page_map"),
        ("hz3::decay::tick", "hz3.decay"),
        ("hz3::lock::SpinMutex::lock_slow", "hz3.lock.spin"),
        ("hz3::probes::Counters::bump", "hz3.probes"),
        (
            "hz3::lock::Mutex<T>::lock_contended;hz3::os::futex_wait;syscall",
            "futex",
        ),
        // The entry's own samples are the inlined hit path (default.toml, hz3.thread_cache).
        ("malloc [libhz3_scale.so]", "hz3.thread_cache"),
        // A linker that folds identical functions gives `malloc` and glibc's direct entry point one
        // address, and perf may name it either way: it is still hz3's, not glibc's.
        ("__libc_malloc [libhz3_scale.so]", "hz3.thread_cache"),
        ("__libc_free [libhz3_fast.so];hz3::api::free", "hz3.thread_cache"),
        ("__libc_malloc [libtcmalloc.so.4.5.10]", "tcmalloc.thread_cache"),
        ("__libc_malloc [libc.so.6]", "glibc.malloc"),
        ("free [libhz3_scale.so];hz3::api::free;hz3::api::free_tagged", "hz3.thread_cache"),
        ("hz3::lock::Mutex<T>::unlock;hz3::raw_lock::RawLock::unlock", "hz3.lock.acquire"),
        ("hz3::transfer::pop;hz3::lock::Mutex<T>::lock", "hz3.lock.acquire"),
        (
            "hz3::lock::Mutex<T>::lock;hz3::lock::Mutex<T>::lock_contended;hz3::raw_lock::RawLock::lock_contended",
            "hz3.lock.spin",
        ),
        ("hz3::central::Filer::file;hz3::run_free::put", "hz3.central"),
        ("hz3::stats::CacheSeen::publish", "hz3.stats"),
        ("realloc [libhz3_scale.so];hz3::api::realloc", "hz3.api"),
        ("__GI___libc_malloc;_int_malloc", "glibc.arena"),
        ("malloc [libc.so.6]", "glibc.tcache"),
        ("__GI___libc_malloc", "glibc.tcache"),
        ("free [libc.so.6]", "glibc.malloc"),
        // perf could not unwind out of libc: no entry point above
        ("_int_free", "glibc.arena"),
        ("malloc [libc.so.6];tcache_get", "glibc.tcache"),
        ("malloc [libc.so.6];_int_malloc;sysmalloc", "glibc.heap"),
        ("free [libc.so.6];_int_free;systrim", "glibc.trim"),
        ("__GI___lll_lock_wait_private", "mutex"),
        ("pthread_mutex_lock", "mutex"),
        (
            "tcmalloc::ThreadCache::FetchFromCentralCache",
            "tcmalloc.thread_cache",
        ),
        (
            "tcmalloc::CentralFreeList::RemoveRange",
            "tcmalloc.transfer_cache",
        ),
        (
            "tcmalloc::CentralFreeList::Populate",
            "tcmalloc.central_freelist",
        ),
        ("tcmalloc::PageHeap::New", "tcmalloc.page_heap"),
        ("malloc [libtcmalloc.so.4.5.10]", "tcmalloc.thread_cache"),
        ("tc_realloc", "tcmalloc.api"),
        ("base::internal::SpinLockDelay", "spin"),
        ("SpinLock::SpinLoop", "spin"),
        ("je_tcache_alloc_small_hard", "jemalloc.tcache"),
        ("je_te_recompute_fast_threshold", "jemalloc.tcache"),
        (
            "malloc [libjemalloc.so];imalloc_fastpath;cache_bin_alloc_easy",
            "jemalloc.tcache",
        ),
        ("je_arena_ralloc", "jemalloc.bin"),
        (
            "free [libjemalloc.so];je_free_impl;arena_ptr_array_flush_impl_small",
            "jemalloc.bin",
        ),
        ("je_extent_alloc_wrapper", "jemalloc.extent"),
        (
            "malloc [libjemalloc.so];je_malloc_default;pac_alloc_real",
            "jemalloc.extent",
        ),
        ("je_large_dalloc", "jemalloc.large"),
        ("je_pac_maybe_decay_purge", "jemalloc.decay"),
        ("je_pages_map", "jemalloc.os"),
        ("je_base_alloc_edata;base_alloc_impl", "jemalloc.metadata"),
        ("[libjemalloc.so.2]", "jemalloc.api"),
        ("free [libjemalloc.so];je_free_impl", "jemalloc.api"),
        ("_mi_free_delayed_block;_mi_page_thread_free_collect", "mimalloc.remote"),
        ("mi_free;mi_free_ex", "mimalloc.local"),
        ("_mi_os_purge_ex", "mimalloc.purge"),
        ("_mi_os_alloc_aligned", "mimalloc.os"),
        ("mi_free_ex;_mi_segment_page_of", "mimalloc.metadata"),
        ("_mi_segment_page_alloc", "mimalloc.segment"),
        ("_mi_malloc_generic", "mimalloc.page"),
        ("mi_malloc", "mimalloc.local"),
        ("mi_free_generic_mt;mi_free_block_mt;mi_block_set_nextx", "mimalloc.remote"),
        ("mi_free;mi_free_ex;mi_free_block_local;mi_block_set_nextx", "mimalloc.local"),
        ("_mi_malloc_generic;mi_find_page;mi_find_free_page;mi_page_queue;_mi_bin;mi_bin", "mimalloc.page"),
        ("mi_option_get", "mimalloc.api"),
        ("_PyObject_Malloc;pymalloc_alloc", "python.pymalloc"),
        ("_PyObject_Free;pymalloc_free;address_in_range;arena_map_is_used", "python.pymalloc"),
        // pymalloc's generic helper names are its only below its entry points
        ("address_in_range", "bench"),
        ("snmalloc::RemoteDeallocCache<snmalloc::Config>::post<9216ul>", "snmalloc.remote"),
        ("snmalloc::PALLinux::notify_using<(snmalloc::ZeroMem)0>", "snmalloc.os"),
        ("snmalloc::FlatPagemap<14ul, snmalloc::Entry>::get_mut<false>", "snmalloc.metadata"),
        ("snmalloc::LargeBuddyRange<21ul>::Type<snmalloc::Parent>::alloc_range", "snmalloc.backend"),
        ("snmalloc::Allocator<snmalloc::Config>::small_refill<snmalloc::Conts>", "snmalloc.slab"),
        (
            "snmalloc::Allocator<snmalloc::Config>::small_alloc<snmalloc::Conts>;snmalloc::AAL_Generic<snmalloc::AAL_x86>::prefetch",
            "snmalloc.local",
        ),
        ("malloc [libsnmalloc.so];snmalloc::libc::malloc", "snmalloc.api"),
        ("malloc [inlined]", "alloc.entry"),
        (
            "asm_exc_page_fault;exc_page_fault;handle_mm_fault;clear_page_erms",
            "kernel.page_fault",
        ),
        (
            "entry_SYSCALL_64;__x64_sys_munmap;unmap_region",
            "kernel.mm",
        ),
        (
            "__GI_sched_yield;entry_SYSCALL_64;__x64_sys_sched_yield;do_sched_yield",
            "kernel.sched",
        ),
        ("core::ptr::write", "bench"),
    ];
    for (frames, expected) in cases {
        assert_eq!(
            box_of(&rules, &format!("{bench};{frames}")),
            expected,
            "{frames}"
        );
    }
    let named: std::collections::BTreeSet<&str> = cases.iter().map(|(_, b)| *b).collect();
    for name in rules.box_names() {
        assert!(
            named.contains(name.as_str()) || name == "other",
            "no example for {name}"
        );
    }
}

#[test]
fn lock_paths_innermost_wins_and_futex_keeps_its_scheduler_time() {
    let rules = analyze::boxes::defaults();
    let s = "b;bench::workload::worker;malloc [libhz3_scale.so];hz3::central::Central::pop_batch;hz3::lock::SpinMutex::lock_slow";
    assert_eq!(box_of(&rules, s), "hz3.lock.spin");
    let s = "b;__GI___libc_malloc;__GI___lll_lock_wait_private;entry_SYSCALL_64;__x64_sys_futex;do_futex;futex_wait;schedule;__schedule;finish_task_switch";
    assert_eq!(box_of(&rules, s), "futex");
    let s = "b;hz3::page_source::PageSource::fresh_run;asm_exc_page_fault;exc_page_fault;schedule";
    assert_eq!(box_of(&rules, s), "kernel.page_fault");
    assert_eq!(box_of(&rules, "b;_start;main;memcpy"), "other");
    assert_eq!(rules.lock_kind("futex"), Some(flamegraphs::LockKind::Mutex));
    assert_eq!(
        rules.lock_kind("hz3.lock.spin"),
        Some(flamegraphs::LockKind::Spin)
    );
    assert_eq!(rules.lock_kind("hz3.central"), None);
}
