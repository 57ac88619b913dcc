//! gzip for scrapes that ask for it (`Accept-Encoding: gzip`, as
//! Prometheus sends by default); the one place that uses flate2.

use std::io::Write;

/// Whether an `Accept-Encoding` header accepts gzip (with a quality above
/// zero, by name or as `*`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut any = None;
    for coding in header.split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => any = Some(q),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// `body` compressed with gzip at a fast level (a scrape is compressed on
/// every request).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_round_trips_and_is_negotiated() {
        let body = b"model_requests_total 1\n".repeat(100);
        let z = gzip(&body);
        assert!(z.len() < body.len() / 4);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        for (header, want) in [
            (None, false),
            (Some("gzip"), true),
            (Some("gzip, deflate, br"), true),
            (Some("identity"), false),
            (Some("gzip;q=0"), false),
            (Some("*"), true),
            (Some("deflate, *;q=0"), false),
            (Some("GZIP;q=0.5"), true),
        ] {
            assert_eq!(accepts_gzip(header), want, "{header:?}");
        }
    }
}
