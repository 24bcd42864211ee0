//! Axis values as written in a spec: one value, a list, or (for integers) a range
//! `{ start, end, step }` / `{ start, end, factor }` with an inclusive end.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// One value or a list of values of `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

struct OneOrManyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or a list of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(OneOrMany(v))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        T::deserialize(s.into_deserializer()).map(|x| OneOrMany(vec![x]))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        T::deserialize(b.into_deserializer()).map(|x| OneOrMany(vec![x]))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

/// An integer range with an inclusive end: arithmetic (`step`) or geometric (`factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntRange {
    /// First value.
    pub start: u32,
    /// Last value (included when the sequence hits it).
    pub end: u32,
    /// Added each time.
    #[serde(default)]
    pub step: Option<u32>,
    /// Multiplied each time.
    #[serde(default)]
    pub factor: Option<u32>,
}

/// An integer axis: one value, a list, or a range.
#[derive(Debug, Clone, PartialEq)]
pub enum IntAxis {
    /// Explicit values.
    List(Vec<u32>),
    /// A range.
    Range(IntRange),
}

/// Largest number of values one axis may expand to: a guard against typos like `step = 0`
/// or `end = 4000000000`, far above any useful hardware axis.
pub const MAX_AXIS_VALUES: usize = 100_000;

impl IntAxis {
    /// The values; the error says what is wrong with a range.
    pub fn values(&self) -> Result<Vec<u32>, String> {
        match self {
            IntAxis::List(v) if v.is_empty() => Err("the list is empty".into()),
            IntAxis::List(v) => Ok(v.clone()),
            IntAxis::Range(r) => {
                if r.end < r.start {
                    return Err(format!("end {} is below start {}", r.end, r.start));
                }
                let mut out = Vec::new();
                match (r.step, r.factor) {
                    (Some(s), None) => {
                        if s == 0 {
                            return Err("step must be at least 1".into());
                        }
                        let mut x = u64::from(r.start);
                        while x <= u64::from(r.end) {
                            out.push(x as u32);
                            if out.len() > MAX_AXIS_VALUES {
                                return Err(format!(
                                    "the range has more than {MAX_AXIS_VALUES} values"
                                ));
                            }
                            x += u64::from(s);
                        }
                    }
                    (None, Some(f)) => {
                        if f < 2 || r.start == 0 {
                            return Err("a geometric range needs factor >= 2 and start >= 1".into());
                        }
                        let mut x = u64::from(r.start);
                        while x <= u64::from(r.end) {
                            out.push(x as u32);
                            x *= u64::from(f);
                        }
                    }
                    (None, None) => out = (r.start..=r.end).collect(),
                    (Some(_), Some(_)) => {
                        return Err("give either step or factor, not both".into());
                    }
                }
                if out.len() > MAX_AXIS_VALUES {
                    return Err(format!("the range has more than {MAX_AXIS_VALUES} values"));
                }
                Ok(out)
            }
        }
    }
}

struct IntAxisVisitor;

impl<'de> Visitor<'de> for IntAxisVisitor {
    type Value = IntAxis;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer, a list of integers, or a range { start, end, step | factor }")
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<IntAxis, E> {
        u32::try_from(n)
            .map(|x| IntAxis::List(vec![x]))
            .map_err(|_| E::custom(format!("{n} does not fit in 32 bits")))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<IntAxis, E> {
        u32::try_from(n)
            .map(|x| IntAxis::List(vec![x]))
            .map_err(|_| E::custom(format!("{n} is not a non-negative 32-bit integer")))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IntAxis, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element::<u32>()? {
            v.push(x);
        }
        Ok(IntAxis::List(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IntAxis, A::Error> {
        IntRange::deserialize(de::value::MapAccessDeserializer::new(map)).map(IntAxis::Range)
    }
}

impl<'de> Deserialize<'de> for IntAxis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntAxisVisitor)
    }
}

/// Points of a space whose axes hold `radices` values each; `(key, problem)` when the count
/// does not fit 64 bits.
pub fn space_len(radices: &[u64]) -> Result<u64, (String, String)> {
    radices
        .iter()
        .try_fold(1u64, |acc, &r| acc.checked_mul(r))
        .ok_or_else(|| {
            (
                "(axes)".to_string(),
                "the space has more than 2^64 points".to_string(),
            )
        })
}

/// The axis indices of point `index` of a space (mixed radix, the last axis varies fastest).
pub fn digits<const N: usize>(index: u64, radices: &[u64]) -> [usize; N] {
    let mut digits = [0usize; N];
    let mut rest = index;
    for (d, r) in digits.iter_mut().zip(radices).rev() {
        *d = (rest % r) as usize;
        rest /= r;
    }
    digits
}

/// Axis values with the key for errors; `default` when the axis is left out.
pub fn int_values(
    axis: &Option<IntAxis>,
    key: &str,
    default: &[u32],
) -> Result<Vec<u32>, (String, String)> {
    match axis {
        None => Ok(default.to_vec()),
        Some(a) => a.values().map_err(|p| (key.to_string(), p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct T {
        a: IntAxis,
        s: OneOrMany<String>,
    }

    #[test]
    fn forms() {
        let t: T = toml::from_str("a = 4\ns = 'x'").unwrap();
        assert_eq!(t.a.values().unwrap(), vec![4]);
        assert_eq!(t.s.0, vec!["x"]);
        let t: T = toml::from_str("a = [1, 2]\ns = ['x', 'y']").unwrap();
        assert_eq!(t.a.values().unwrap(), vec![1, 2]);
        let t: T = toml::from_str("a = { start = 2, end = 9, step = 3 }\ns = []").unwrap();
        assert_eq!(t.a.values().unwrap(), vec![2, 5, 8]);
        let t: T = toml::from_str("a = { start = 2, end = 32, factor = 2 }\ns = []").unwrap();
        assert_eq!(t.a.values().unwrap(), vec![2, 4, 8, 16, 32]);
        let err = toml::from_str::<T>("a = { start = 2, stop = 9 }\ns = []").unwrap_err();
        assert!(err.to_string().contains("stop"), "{err}");
        let t: T = toml::from_str("a = { start = 2, end = 9, step = 0 }\ns = []").unwrap();
        assert!(t.a.values().unwrap_err().contains("step"));
    }
}
