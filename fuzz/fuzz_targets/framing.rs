//! The first bytes choose the line limit and the chunk sizes, the rest is
//! the stream: the lines must not depend on how the stream was cut, and the
//! buffer stays within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_exporter::ingest::framing::{Frame, LineFramer};

#[derive(Debug, PartialEq)]
enum Out {
    Line(Vec<u8>),
    TooLong,
}

fn run(limit: usize, chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Out> {
    let mut framer = LineFramer::new(limit);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        framer.drain_lines(|f| {
            out.push(match f {
                Frame::Line(l) => Out::Line(l.to_vec()),
                Frame::TooLong => Out::TooLong,
            })
        });
        assert!(framer.buffered() <= limit);
    }
    match framer.finish() {
        Some(Frame::Line(l)) => out.push(Out::Line(l.to_vec())),
        Some(Frame::TooLong) => out.push(Out::TooLong),
        None => {}
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [limit, step, stream @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit % 64) + 1;
    let step = usize::from(*step % 32) + 1;
    let whole = run(limit, &mut std::iter::once(stream));
    let pieces = run(limit, &mut stream.chunks(step));
    assert_eq!(whole, pieces);
    let bytes = run(limit, &mut stream.chunks(1));
    assert_eq!(whole, bytes);
});
