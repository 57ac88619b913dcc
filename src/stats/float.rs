//! A serde helper for floats in snapshots.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` that survives JSON: finite values are numbers, the others the
/// strings `"NaN"`, `"+Inf"` and `"-Inf"` (JSON has no such numbers, and a
/// `null` in their place would make the whole snapshot unreadable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64(pub f64);

impl Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_finite() {
            s.serialize_f64(x)
        } else if x.is_nan() {
            s.serialize_str("NaN")
        } else if x > 0.0 {
            s.serialize_str("+Inf")
        } else {
            s.serialize_str("-Inf")
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = F64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<F64, E> {
                match v {
                    "NaN" => Ok(F64(f64::NAN)),
                    "+Inf" => Ok(F64(f64::INFINITY)),
                    "-Inf" => Ok(F64(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_that_json_lacks_survive() {
        let xs = [
            F64(1.5),
            F64(-0.0),
            F64(f64::INFINITY),
            F64(f64::NEG_INFINITY),
            F64(1e-300),
        ];
        let text = serde_json::to_string(&xs).unwrap();
        assert_eq!(text, r#"[1.5,-0.0,"+Inf","-Inf",1e-300]"#);
        let back: Vec<F64> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, xs);
        let nan: F64 = serde_json::from_str(r#""NaN""#).unwrap();
        assert!(nan.0.is_nan());
        let int: F64 = serde_json::from_str("-7").unwrap();
        assert_eq!(int, F64(-7.0));
        assert!(serde_json::from_str::<F64>(r#""inf""#).is_err());
        assert!(serde_json::from_str::<F64>("null").is_err());
    }
}
