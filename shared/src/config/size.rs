//! Human-friendly sizes ("64 MiB") and durations ("24h") used in job files.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A byte count written as a number of bytes or a string such as `"64 MiB"` or `"5GB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tib", 1 << 40),
];

impl ByteSize {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write e.g. \"64 MiB\", \"5GB\" or a number of bytes"))?;
        let unit = unit.trim().to_ascii_lowercase();
        let factor = UNITS.iter().find(|(name, _)| *name == unit).map(|(_, factor)| *factor).ok_or_else(|| {
            format!("unknown size unit `{unit}` in `{text}`; allowed: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB")
        })?;
        Ok(ByteSize((number * factor as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, factor) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if bytes >= factor && bytes.is_multiple_of(factor) {
                return write!(f, "{} {unit}", bytes / factor);
            }
        }
        if bytes >= 1 << 20 {
            return write!(f, "{:.1} MiB", bytes as f64 / (1u64 << 20) as f64);
        }
        write!(f, "{bytes} B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"64 MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A duration written as `"90s"`, `"30m"`, `"24h"` or `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 =
            number.parse().map_err(|_| format!("`{text}` is not a duration; write e.g. \"30m\", \"24h\" or \"7d\""))?;
        let seconds = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            other => {
                return Err(format!("unknown duration unit `{other}` in `{text}`; allowed: s, m, h, d, w"));
            }
        };
        if number == 0 {
            return Err("a duration must be greater than zero".into());
        }
        Ok(HumanDuration(Duration::from_secs(number * seconds)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (unit, factor) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if secs.is_multiple_of(factor) {
                return write!(f, "{}{unit}", secs / factor);
            }
        }
        write!(f, "{secs}s")
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HumanDuration::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_families() {
        assert_eq!(ByteSize::parse("64 MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("5GB").unwrap().0, 5_000_000_000);
        assert_eq!(ByteSize::parse("1.5 KiB").unwrap().0, 1536);
        assert_eq!(ByteSize::parse("123").unwrap().0, 123);
        assert!(ByteSize::parse("12 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(ByteSize::parse("MiB").is_err());
    }

    #[test]
    fn sizes_print_back_as_they_parse() {
        for text in ["64 MiB", "5 GiB", "100 B", "8 KiB"] {
            assert_eq!(ByteSize::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(HumanDuration::parse("24h").unwrap().0.as_secs(), 86_400);
        assert_eq!(HumanDuration::parse("24h").unwrap().to_string(), "1d");
        assert_eq!(HumanDuration::parse("90s").unwrap().to_string(), "90s");
        assert!(HumanDuration::parse("3 fortnights").is_err());
        assert!(HumanDuration::parse("0h").is_err());
    }
}
