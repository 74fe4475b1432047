//! Values with units on the command line: `30s`, `500ms`, `2m`; `64KiB`,
//! `1MiB`, `8192`.

use std::time::Duration;

/// A duration: a whole number followed by `ms`, `s` (the default) or `m`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 30s, 500ms or 2m"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        other => Err(format!(
            "unknown unit {other:?} in {text:?}; use ms, s or m"
        )),
    }
}

/// A size in bytes: a whole number followed by nothing (bytes), `KiB` or
/// `MiB` (`K`/`KB`/`M`/`MB` are read the same, as powers of two).
pub fn bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. 65536, 64KiB or 1MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use KiB or MiB"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_with_their_units() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("75"), Ok(Duration::from_secs(75)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("soon").is_err());
        assert!(duration("3h").is_err());
        assert_eq!(bytes("64KiB"), Ok(65536));
        assert_eq!(bytes("8192"), Ok(8192));
        assert_eq!(bytes("1MiB"), Ok(1 << 20));
        assert!(bytes("lots").is_err());
        assert!(bytes("99999999999999999999").is_err());
    }
}
