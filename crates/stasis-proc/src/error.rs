//! The error type shared by all parsers, plus small strict number parsers.
//!
//! [`ProcError`] always names the `/proc` file kind (for example
//! `"/proc/PID/maps"`); line-level failures also carry the 1-based line number
//! and the (truncated) offending text so a failed dump can be diagnosed from
//! the log alone.

use thiserror::Error;

/// Longest line excerpt kept in an error, in bytes (cut on a char boundary).
const MAX_EXCERPT: usize = 200;

/// A `/proc` text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProcError {
    /// A specific line is malformed.
    #[error("{file}: line {line}: {reason}: {text:?}")]
    BadLine {
        /// The `/proc` file kind, e.g. `"/proc/PID/maps"`.
        file: &'static str,
        /// 1-based line number within the text.
        line: usize,
        /// What was wrong with it.
        reason: String,
        /// The offending line (truncated to a few hundred bytes).
        text: String,
    },
    /// A field that must be present was not found anywhere in the text.
    #[error("{file}: missing required field {field:?}")]
    Missing {
        /// The `/proc` file kind, e.g. `"/proc/PID/status"`.
        file: &'static str,
        /// Name of the missing field.
        field: &'static str,
    },
}

impl ProcError {
    /// Builds a [`ProcError::BadLine`], truncating `text`.
    pub(crate) fn bad_line(
        file: &'static str,
        line: usize,
        text: &str,
        reason: impl Into<String>,
    ) -> Self {
        let mut end = text.len().min(MAX_EXCERPT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        ProcError::BadLine {
            file,
            line,
            reason: reason.into(),
            text: text[..end].to_string(),
        }
    }

    /// The `/proc` file kind this error is about.
    pub fn file(&self) -> &'static str {
        match self {
            ProcError::BadLine { file, .. } | ProcError::Missing { file, .. } => file,
        }
    }

    /// The 1-based line number, if the error is about a specific line.
    pub fn line(&self) -> Option<usize> {
        match self {
            ProcError::BadLine { line, .. } => Some(*line),
            ProcError::Missing { .. } => None,
        }
    }
}

/// Parses a non-empty string of ASCII decimal digits (no sign, no spaces).
pub(crate) fn dec_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Like [`dec_u64`] but range-checked to `u32`.
pub(crate) fn dec_u32(s: &str) -> Option<u32> {
    dec_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Parses an optionally `-`-signed decimal integer.
pub(crate) fn dec_i64(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = i64::try_from(dec_u64(digits)?).ok();
    match (neg, v) {
        (false, v) => v,
        (true, Some(v)) => Some(-v),
        // i64::MIN has no positive counterpart.
        (true, None) if dec_u64(digits) == Some(1u64 << 63) => Some(i64::MIN),
        (true, None) => None,
    }
}

/// Like [`dec_i64`] but range-checked to `i32`.
pub(crate) fn dec_i32(s: &str) -> Option<i32> {
    dec_i64(s).and_then(|v| i32::try_from(v).ok())
}

/// Parses a non-empty string of hex digits, with an optional `0x` prefix.
pub(crate) fn hex_u64(s: &str) -> Option<u64> {
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Like [`hex_u64`] but range-checked to `u32`.
pub(crate) fn hex_u32(s: &str) -> Option<u32> {
    hex_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Parses a non-empty string of octal digits (a leading `0` is just a digit).
pub(crate) fn oct_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok()
}

/// Splits `line` at the first `:` into a key and a whitespace-trimmed value.
pub(crate) fn split_key(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(':')?;
    Some((k, v.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_numbers() {
        assert_eq!(dec_u64("123"), Some(123));
        assert_eq!(dec_u64("+1"), None);
        assert_eq!(dec_u64(""), None);
        assert_eq!(dec_u64("18446744073709551616"), None);
        assert_eq!(dec_u32("4294967296"), None);
        assert_eq!(dec_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(dec_i64("-9223372036854775809"), None);
        assert_eq!(dec_i32("-1"), Some(-1));
        assert_eq!(dec_i32("-"), None);
        assert_eq!(hex_u64("0xff"), Some(255));
        assert_eq!(hex_u64("FF"), Some(255));
        assert_eq!(hex_u64("0x"), None);
        assert_eq!(hex_u64("+f"), None);
        assert_eq!(hex_u32("100000000"), None);
        assert_eq!(oct_u32("0100000"), Some(0o100000));
        assert_eq!(oct_u32("8"), None);
    }

    #[test]
    fn error_display_names_file_and_line() {
        let e = ProcError::bad_line("/proc/PID/maps", 3, "junk", "bad range");
        assert_eq!(e.to_string(), "/proc/PID/maps: line 3: bad range: \"junk\"");
        assert_eq!(e.file(), "/proc/PID/maps");
        assert_eq!(e.line(), Some(3));
        let long = "é".repeat(300);
        match ProcError::bad_line("f", 1, &long, "x") {
            ProcError::BadLine { text, .. } => assert!(text.len() <= MAX_EXCERPT),
            ProcError::Missing { .. } => unreachable!(),
        }
        let m = ProcError::Missing {
            file: "/proc/PID/status",
            field: "Pid",
        };
        assert_eq!(m.line(), None);
        assert!(m.to_string().contains("Pid"));
    }
}
