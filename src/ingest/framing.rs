//! Cutting a byte stream into lines with a bounded buffer.
//!
//! [`LineFramer`] owns the read buffer of one stream connection. Bytes are
//! read straight into it ([`LineFramer::read_buf`]), complete lines are handed
//! out by [`LineFramer::drain_lines`], and a line that grows past the limit
//! without a newline is reported once as [`Frame::TooLong`] and then skipped up
//! to its newline, so a connection never holds more than `limit` plus one read
//! chunk of memory.
//!
//! The limit counts the line's content: neither its `\n` nor the `\r` of a
//! CRLF ending, so a client that ends lines with `\r\n` may send lines as
//! long as one that ends them with `\n`.

/// How many bytes one read asks for.
pub const READ_CHUNK: usize = 16 * 1024;

/// What the framer hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` (a trailing `\r` is left in place;
    /// JSON parsing treats it as white space).
    Line(&'a [u8]),
    /// A line exceeded the limit; its bytes were dropped up to the next `\n`.
    TooLong,
}

/// A bounded line buffer for one stream connection.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    /// Dropping an over-long line until its newline.
    discarding: bool,
    limit: usize,
}

impl LineFramer {
    /// A framer accepting lines of at most `limit` bytes. No memory is
    /// allocated until the first read.
    pub fn new(limit: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            scanned: 0,
            discarding: false,
            limit: limit.max(1),
        }
    }

    /// The buffer to read into: call [`Vec::reserve`]-free reads such as
    /// tokio's `read_buf` on it. Room for one chunk is ensured.
    pub fn read_buf(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.reserve(READ_CHUNK);
        }
        &mut self.buf
    }

    /// Appends bytes (for callers that read elsewhere, and for tests).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Hands every complete line to `f`, then keeps only the unfinished tail.
    pub fn drain_lines(&mut self, mut f: impl FnMut(Frame<'_>)) {
        self.drain_some(|frame| {
            f(frame);
            true
        });
    }

    /// Hands complete lines to `f` until it returns `false`; returns whether
    /// complete lines are left (call again to have them). Once every
    /// complete line is out, only the unfinished tail is kept, as
    /// [`LineFramer::drain_lines`] does.
    pub fn drain_some(&mut self, mut f: impl FnMut(Frame<'_>) -> bool) -> bool {
        let mut start = 0;
        let mut go_on = true;
        while go_on && let Some(pos) = memchr(b'\n', &self.buf[self.scanned..]) {
            let end = self.scanned + pos;
            if self.discarding {
                self.discarding = false;
            } else if content_len(&self.buf[start..end]) > self.limit {
                go_on = f(Frame::TooLong);
            } else {
                go_on = f(Frame::Line(&self.buf[start..end]));
            }
            start = end + 1;
            self.scanned = start;
        }
        let more = !go_on && memchr(b'\n', &self.buf[self.scanned..]).is_some();
        if more {
            // Stopped early: keep the rest for the next call.
            self.buf.drain(..start);
            self.scanned = 0;
            return true;
        }
        self.scanned = self.buf.len();
        let pending = self.buf.len() - start;
        if self.discarding {
            start = self.buf.len();
        } else if pending > self.limit
            && !(pending == self.limit + 1 && self.buf.last() == Some(&b'\r'))
        {
            // Past the limit with no newline yet; a lone trailing `\r` may
            // be the first half of a CRLF ending, so it is waited for.
            f(Frame::TooLong);
            self.discarding = true;
            start = self.buf.len();
        }
        if start > 0 {
            self.buf.drain(..start);
            self.scanned = self.buf.len();
        }
        // Give back what one over-long burst made the buffer grow to.
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
        false
    }

    /// At end of stream: the unfinished last line, if any, and whether bytes
    /// of an over-long line were being dropped.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        if self.discarding {
            self.discarding = false;
            self.buf.clear();
            self.scanned = 0;
            return None;
        }
        self.scanned = 0;
        if self.buf.is_empty() {
            None
        } else {
            Some(Frame::Line(&self.buf))
        }
    }

    /// Bytes currently held (for memory accounting and tests).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Capacity currently allocated.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Length of a line without its `\n`, less the `\r` of a CRLF ending.
fn content_len(line: &[u8]) -> usize {
    line.len() - usize::from(line.last() == Some(&b'\r'))
}

/// Position of the first `needle` in `hay` (vectorised by the memchr crate).
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `chunks`, taking at most `per_call` frames per call of
    /// `drain_some` (and calling it until it says nothing is left).
    fn run_some(limit: usize, chunks: &[&[u8]], per_call: usize) -> (Vec<String>, Option<String>) {
        let mut f = LineFramer::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            loop {
                let mut taken = 0;
                let more = f.drain_some(|fr| {
                    out.push(match fr {
                        Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                        Frame::TooLong => "<too long>".into(),
                    });
                    taken += 1;
                    taken < per_call
                });
                if !more {
                    break;
                }
                assert_eq!(taken, per_call, "stopped before it was told to");
            }
            assert!(f.buffered() <= limit + 1, "buffer exceeded limit");
        }
        let tail = f.finish().map(|fr| match fr {
            Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
            Frame::TooLong => unreachable!(),
        });
        (out, tail)
    }

    #[test]
    fn framing_table() {
        type Case<'a> = (usize, &'a [&'a [u8]], &'a [&'a str], Option<&'a str>);
        let cases: &[Case] = &[
            (100, &[b"a\nb\n"], &["a", "b"], None),
            (100, &[b"a", b"b\nc", b"d\n"], &["ab", "cd"], None),
            (100, &[b"a\n\n"], &["a", ""], None),
            (100, &[b"abc"], &[], Some("abc")),
            (100, &[b"a\r\n"], &["a\r"], None),
            // exactly at the limit is fine, one more is not
            (3, &[b"abc\n"], &["abc"], None),
            (3, &[b"abcd\nok\n"], &["<too long>", "ok"], None),
            // an over-long line arriving in pieces is reported once
            (
                3,
                &[b"ab", b"cd", b"ef", b"gh\nok\n"],
                &["<too long>", "ok"],
                None,
            ),
            (3, &[b"abcdef"], &["<too long>"], None),
            (3, &[b"abcdef", b"gh"], &["<too long>"], None),
            (3, &[b"abcdef", b"gh\nxy"], &["<too long>"], Some("xy")),
        ];
        for (limit, chunks, lines, tail) in cases {
            let (got, got_tail) = run(*limit, chunks);
            assert_eq!(got, *lines, "chunks {chunks:?}");
            assert_eq!(got_tail.as_deref(), *tail, "chunks {chunks:?}");
            // Taken a few lines at a time, the frames are the same.
            for per_call in [1, 2] {
                let (got, got_tail) = run_some(*limit, chunks, per_call);
                assert_eq!(got, *lines, "chunks {chunks:?}, {per_call} per call");
                assert_eq!(
                    got_tail.as_deref(),
                    *tail,
                    "chunks {chunks:?}, {per_call} per call"
                );
            }
        }
    }

    fn run(limit: usize, chunks: &[&[u8]]) -> (Vec<String>, Option<String>) {
        let mut f = LineFramer::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            f.drain_lines(|fr| {
                out.push(match fr {
                    Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                    Frame::TooLong => "<too long>".into(),
                })
            });
            assert!(f.buffered() <= limit + 1, "buffer exceeded limit");
        }
        let tail = f.finish().map(|fr| match fr {
            Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
            Frame::TooLong => unreachable!(),
        });
        (out, tail)
    }

    /// Lines of max-1, max and max+1 bytes of content, ended by LF or
    /// CRLF, whole or with the ending split across reads: the `\r` of a
    /// CRLF ending does not count against the limit.
    #[test]
    fn the_limit_counts_content_not_line_endings() {
        const MAX: usize = 8;
        for len in [MAX - 1, MAX, MAX + 1] {
            let content = "x".repeat(len);
            let accepted = len <= MAX;
            for ending in ["\n", "\r\n"] {
                let line = format!("{content}{ending}");
                let splits: Vec<Vec<&[u8]>> = vec![
                    vec![line.as_bytes(), b"ok\n"],
                    // the ending split across reads
                    vec![
                        &line.as_bytes()[..line.len() - 1],
                        &line.as_bytes()[line.len() - 1..],
                        b"ok\n",
                    ],
                    // byte by byte
                    line.as_bytes()
                        .chunks(1)
                        .chain(std::iter::once(&b"ok\n"[..]))
                        .collect(),
                ];
                for chunks in splits {
                    let want_first = if accepted {
                        format!("{content}{}", ending.trim_end_matches('\n'))
                    } else {
                        "<too long>".to_owned()
                    };
                    let want = [want_first.as_str(), "ok"];
                    assert_eq!(
                        run(MAX, &chunks).0,
                        want,
                        "{len} bytes ended by {ending:?}, chunks {chunks:?}"
                    );
                    for per_call in [1, 2] {
                        assert_eq!(run_some(MAX, &chunks, per_call).0, want);
                    }
                }
            }
        }
        // A `\r` that is not followed by `\n` is content.
        let (got, _) = run(3, &[b"abc\r", b"x\nok\n"]);
        assert_eq!(got, ["<too long>", "ok"]);
        let (got, _) = run(3, &[b"abc\r\r\nok\n"]);
        assert_eq!(got, ["<too long>", "ok"]);
        // An unterminated last line of max bytes plus `\r` is kept whole.
        let (got, tail) = run(3, &[b"abc\r"]);
        assert!(got.is_empty());
        assert_eq!(tail.as_deref(), Some("abc\r"));
    }

    #[test]
    fn memory_stays_bounded_on_a_huge_line() {
        let mut f = LineFramer::new(64 * 1024);
        let chunk = vec![b'x'; READ_CHUNK];
        let mut too_long = 0;
        for _ in 0..(10 * 1024 * 1024 / READ_CHUNK) {
            f.read_buf().extend_from_slice(&chunk);
            f.drain_lines(|fr| {
                if fr == Frame::TooLong {
                    too_long += 1
                }
            });
            assert!(f.capacity() <= 64 * 1024 + 2 * READ_CHUNK + READ_CHUNK);
        }
        assert_eq!(too_long, 1);
        f.push(b"\n{}\n");
        let mut lines = Vec::new();
        f.drain_lines(|fr| lines.push(format!("{fr:?}")));
        assert_eq!(lines, vec![format!("{:?}", Frame::Line(b"{}"))]);
    }
}
