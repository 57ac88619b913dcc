//! A histogram family whose members have buckets of their own.
//!
//! `model_feature_value` uses, for each feature, the bin edges of the
//! feature's reference baseline, so that Prometheus can sum a feature's
//! histogram across pods and compare it with the reference bin by bin.
//! Features without a reference use the default buckets. The prometheus
//! crate's `HistogramVec` gives every member the same buckets; the
//! [`HistogramVec`](super::series::HistogramVec) of this crate's direct
//! encoder lets each member ([`HistogramFamily::member`]) have its own.

pub use super::series::HistogramVec as HistogramFamily;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_own_buckets() {
        let fam = HistogramFamily::new("x_value", "help", &["model", "feature"], &[1.0]);
        let a = fam.member(&["m", "age"], &[18.0, 65.0]);
        let b = fam.member(&["m", "income"], &[1e4, 1e5]);
        a.observe(30.0);
        b.observe(5e4);
        let mut out = Vec::new();
        fam.family().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.matches("# TYPE x_value histogram").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains(r#"x_value_bucket{feature="age",model="m",le="65"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x_value_bucket{feature="income",model="m",le="100000"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"le="1""#), "{text}");
        fam.remove(&a);
        let mut out = Vec::new();
        fam.family().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("age"), "{text}");
        assert!(text.contains("income"), "{text}");
        let c = fam.member(&["m", "c"], &[1.0]);
        fam.remove_all(&[b, c]);
        assert!(fam.family().is_empty());
    }
}
