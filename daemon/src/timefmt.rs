//! Wall-clock time: Unix nanoseconds now, and FLoM's timestamp elements (`strftime` in
//! local time, with `#f`…`#ffffff` standing for "." and 1–6 fraction digits).
//!
//! Formats only: which element a grant gets, and when, is [`crate::rules`]'s.

use std::ffi::CString;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock Unix nanoseconds.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Formats `ns` (Unix nanoseconds) with a FLoM timestamp format.
pub fn format_timestamp(format: &str, ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as libc::time_t;
    let nanos = ns % 1_000_000_000;
    // Replace each `#f…` run before strftime sees it; `%` in the fraction cannot occur.
    let mut pattern = String::with_capacity(format.len() + 8);
    let mut rest = format;
    while let Some(at) = rest.find('#') {
        pattern.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let run = after.bytes().take_while(|&b| b == b'f').count();
        if run == 0 {
            pattern.push('#');
            rest = after;
            continue;
        }
        let digits = run.min(6);
        let frac = nanos / 10u64.pow(9 - digits as u32);
        pattern.push_str(&format!(".{frac:0digits$}"));
        rest = &after[run..];
    }
    pattern.push_str(rest);
    strftime_local(&pattern, secs)
}

fn strftime_local(pattern: &str, secs: libc::time_t) -> String {
    let Ok(c_pattern) = CString::new(pattern) else {
        return String::new();
    };
    // SAFETY: localtime_r and strftime write only into the buffers we pass, with their sizes.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = vec![0u8; 256 + pattern.len() * 8];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c_pattern.as_ptr(), &tm);
        buf.truncate(n);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_digits_replace_hashes() {
        // 1970-01-01T00:00:05.708123456Z; the test's TZ may not be UTC, so use %S only.
        let ns = 5_708_123_456;
        assert_eq!(format_timestamp("%S#fff", ns), "05.708");
        assert_eq!(format_timestamp("%S#f", ns), "05.7");
        assert_eq!(format_timestamp("%S#ffffff", ns), "05.708123");
        assert_eq!(format_timestamp("x#y", ns), "x#y");
    }
}
