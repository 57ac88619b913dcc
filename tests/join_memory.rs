//! The feedback join's memory does not depend on how long request ids are:
//! measured as the heap it holds (a counting allocator around the system
//! one), not as RSS or time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use model_exporter::aggregate::join::FeedbackJoiner;
use model_exporter::ingest::event::Outcome;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Request id number `i`, `len` bytes long (at least 10).
fn long_id(i: usize, len: usize) -> String {
    format!("{}{i:010}", "x".repeat(len - 10))
}

/// Heap bytes held by a join of capacity `cap` after 10 × `cap` predictions
/// whose ids are `len` bytes long, each id freed once sent.
fn held(cap: usize, len: usize) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut j = FeedbackJoiner::new(Duration::from_secs(86_400), cap);
    let p = Outcome::Number(0.5);
    for i in 0..10 * cap {
        let id = long_id(i, len);
        j.on_inference("fraud", "v3", &id, &p, 1000.0 + i as f64);
    }
    assert_eq!(j.len(), cap);
    let last = long_id(10 * cap - 1, len);
    let held = LIVE.load(Ordering::Relaxed) - before;
    // The newest are still found by their long ids.
    assert!(
        j.on_feedback(
            "fraud",
            Some(&last),
            &Outcome::Number(1.0),
            None,
            1000.0 + (10 * cap) as f64
        )
        .pair()
        .is_some()
    );
    drop(last);
    held
}

#[test]
fn ids_of_64_kib_do_not_grow_the_join() {
    const CAP: usize = 1000;
    // Within the same bound whatever the ids: 512 bytes an entry at this
    // small capacity (docs/feedback.md; the tables' sizes depend on where
    // the randomly seeded hashes fall). Ids of 64 KiB held would take
    // 64 MiB here.
    for len in [36, 64 * 1024] {
        let bytes = held(CAP, len);
        assert!(
            bytes <= 512 * CAP as isize,
            "ids of {len} B: {bytes} B held"
        );
    }
}
