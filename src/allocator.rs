//! The process's memory allocator: mimalloc.
//!
//! Events are parsed on the listeners' threads and freed on the
//! aggregator's. With glibc's allocator each such free takes the lock of
//! the arena the memory came from, and under load the two threads met on
//! that lock (futex waits and wake-ups were about a tenth of the exporter's
//! CPU). mimalloc frees memory of another thread without a lock, onto that
//! thread's own free list. See docs/performance.md.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets up the allocator before it starts: no transparent huge pages, and
/// freed memory given back at once.
///
/// Huge pages: mimalloc reserves a large arena and commits it eagerly;
/// where THP is `always` (common on Kubernetes nodes) every first touch of
/// it faulted in a whole 2 MiB page, and the idle exporter was resident at
/// 23 MiB instead of 9.5. Small pages cost nothing measurable here: the
/// exporter's hot data is a few MiB. `PR_SET_THP_DISABLE` turns THP off for
/// the process.
///
/// Purging: by default mimalloc returns freed pages to the system a second
/// after they are freed, and only when the allocator is busy again, so an
/// exporter that went quiet after a burst kept the burst's memory (series
/// memory measured 0.62 MiB per 1,000 series instead of 0.48).
/// `MIMALLOC_PURGE_DELAY=0`, unless the environment already sets it, returns
/// them at once; throughput did not change measurably. Under load the
/// listeners' batches of events (a few hundred KiB each) were returned and
/// faulted in again with every batch, until applied batches were kept for
/// re-use (`ingest::batch::recycle`).
///
/// It runs as an ELF constructor of priority 100: mimalloc initialises in
/// one of priority 101 (and reads its options from the environment), and
/// the linker orders `.init_array.NNNNN` sections by that number (the
/// standard library registers its own start-up code the same way).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static SET_UP: extern "C" fn() = set_up;

#[cfg(target_os = "linux")]
extern "C" fn set_up() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag
    // of this process; a failure (an old kernel) leaves THP as it was.
    // setenv gets two NUL-terminated literals, and runs before any other
    // thread exists; with overwrite 0 a value the user set is kept.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        libc::setenv(c"MIMALLOC_PURGE_DELAY".as_ptr(), c"0".as_ptr(), 0);
    }
}
