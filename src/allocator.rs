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

/// Stops the kernel from backing this process's memory with transparent
/// huge pages, before mimalloc first touches its arena.
///
/// mimalloc reserves a large arena and commits it eagerly; where THP is
/// `always` (common on Kubernetes nodes) every first touch of it faulted in
/// a whole 2 MiB page, and the idle exporter was resident at 23 MiB instead
/// of 9.5. Small pages cost nothing measurable here: the exporter's hot
/// data is a few MiB.
///
/// It runs as an ELF constructor of priority 100: mimalloc initialises in
/// one of priority 101, and the linker orders `.init_array.NNNNN` sections
/// by that number (the standard library registers its own start-up code
/// the same way).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

#[cfg(target_os = "linux")]
extern "C" fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag
    // of this process; a failure (an old kernel) leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
