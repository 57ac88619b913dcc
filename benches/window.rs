//! Benchmarks of sliding windows: recording into the current slice, and
//! merging a 5 m window of 10 s sketch slices.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model_exporter::stats::sketch::Sketch;
use model_exporter::stats::window::{Counts, Moments, SlidingWindow};

const S10: Duration = Duration::from_secs(10);
const M5: Duration = Duration::from_secs(300);

fn latency(i: u64) -> f64 {
    let x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let u = (x >> 11) as f64 / (1u64 << 53) as f64;
    0.05 * ((u - 0.5) * 6.0).exp()
}

fn bench(c: &mut Criterion) {
    const N: u64 = 4096;
    let mut g = c.benchmark_group("window_record");
    g.throughput(Throughput::Elements(N));

    // Warm ring: every slot has seen the latency range once.
    let mut sketches = SlidingWindow::<Sketch>::new(S10, M5);
    for i in 0..31 * N {
        sketches
            .current_mut(1_000_000.0 + i as f64 * (310.0 / (31 * N) as f64))
            .insert(latency(i));
    }
    let now = 1_000_310.0;
    g.bench_function("sketch_insert", |b| {
        b.iter(|| {
            for i in 0..N {
                sketches.current_mut(black_box(now)).insert(latency(i));
            }
        })
    });

    let mut counts = SlidingWindow::<Counts<4>>::new(S10, M5);
    g.bench_function("counts_incr", |b| {
        b.iter(|| {
            for i in 0..N {
                counts.current_mut(black_box(now)).incr((i & 3) as usize);
            }
        })
    });

    let mut moments = SlidingWindow::<Moments>::new(S10, M5);
    g.bench_function("moments_insert", |b| {
        b.iter(|| {
            for i in 0..N {
                moments
                    .current_mut(black_box(now))
                    .insert(50_000.0 + latency(i));
            }
        })
    });
    g.finish();

    // 5 m of 10 s slices, 1000 events per slice.
    let mut ring = SlidingWindow::<Sketch>::new(S10, M5);
    for i in 0..31_000u64 {
        ring.current_mut(2_000_000.0 + i as f64 * 0.01)
            .insert(latency(i));
    }
    let mut into = Sketch::new();
    c.bench_function("window_merge/sketch_5m_of_10s", |b| {
        b.iter(|| {
            ring.merged(black_box(2_000_309.99), M5, &mut into);
            black_box(into.quantile(0.99))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
