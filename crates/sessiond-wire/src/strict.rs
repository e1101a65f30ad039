//! Deserializers more exact than serde's derives, where the derives and the
//! documented schema would disagree:
//!
//! - [`object`]: only a JSON object. A derived struct also reads a JSON
//!   array, its fields in order, so `"client": ["10.0.0.1", "curl"]` would
//!   be taken for a client.
//! - [`aal`]: the JSON Schema integers, `2.0` and `2e0` included (JSON
//!   Schema calls a number with a zero fraction an integer; a derived `u8`
//!   refuses it). Fractions and values beyond `u8` are refused.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor, value::MapAccessDeserializer};

/// `T` from a JSON object only.
pub(crate) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct ObjectOnly<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(ObjectOnly(PhantomData))
}

/// An optional assurance level: `null` or absent is `None`, an integer
/// (also written `2.0`) is its value; the range 1–3 is checked by the
/// caller, which knows how to answer.
pub(crate) fn aal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    struct Level;

    impl<'de> Visitor<'de> for Level {
        type Value = Option<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer from 1 to 3")
        }

        fn visit_none<E: Error>(self) -> Result<Option<u8>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<u8>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u8>, D::Error> {
            deserializer.deserialize_any(Level)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<Option<u8>, E> {
            u8::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("aal must be an integer from 1 to 3"))
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<Option<u8>, E> {
            u8::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("aal must be an integer from 1 to 3"))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<Option<u8>, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u8::MAX)).contains(&v) {
                // Integral and within u8: the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(v as u8))
            } else {
                Err(E::custom("aal must be an integer from 1 to 3"))
            }
        }
    }

    deserializer.deserialize_option(Level)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Aal {
        #[serde(default, deserialize_with = "super::aal")]
        aal: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: Option<u8>,
        b: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(deserialize_with = "super::object")]
        pair: Pair,
    }

    #[test]
    fn aal_takes_json_schema_integers_and_nothing_else() {
        let table: [(&str, Option<Option<u8>>); 14] = [
            ("{}", Some(None)),
            (r#"{"aal": null}"#, Some(None)),
            (r#"{"aal": 1}"#, Some(Some(1))),
            (r#"{"aal": 3}"#, Some(Some(3))),
            (r#"{"aal": 2.0}"#, Some(Some(2))),
            (r#"{"aal": 2e0}"#, Some(Some(2))),
            (r#"{"aal": 4.0}"#, Some(Some(4))),
            (r#"{"aal": -0.0}"#, Some(Some(0))),
            (r#"{"aal": 1.5}"#, None),
            (r#"{"aal": -1}"#, None),
            (r#"{"aal": 256}"#, None),
            (r#"{"aal": 1e300}"#, None),
            (r#"{"aal": "2"}"#, None),
            (r#"{"aal": [2]}"#, None),
        ];
        for (json, expected) in table {
            let got = serde_json::from_str::<Aal>(json).ok().map(|a| a.aal);
            assert_eq!(got, expected, "{json}");
        }
    }

    #[test]
    fn object_takes_an_object_only() {
        let table: [(&str, Option<Pair>); 5] = [
            (r#"{"pair": {"a": 1, "b": null}}"#, Some(Pair { a: Some(1), b: None })),
            (r#"{"pair": [1, 2]}"#, None),
            (r#"{"pair": [null, null]}"#, None),
            (r#"{"pair": {"a": 1, "b": 2, "c": 3}}"#, None),
            (r#"{"pair": null}"#, None),
        ];
        for (json, expected) in table {
            let got = serde_json::from_str::<Outer>(json).ok().map(|o| o.pair);
            assert_eq!(got, expected, "{json}");
        }
        // What the derive alone does, and why this module exists.
        assert_eq!(
            serde_json::from_str::<Pair>("[1, 2]").ok(),
            Some(Pair { a: Some(1), b: Some(2) })
        );
    }
}
