//! The tree's times: Unix nanoseconds as a `SystemTime` (for mtimes) and as RFC 3339 UTC
//! text (for `daemon/snapshot_time`). No time zone database: UTC only, on purpose.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix nanoseconds as a `SystemTime`.
pub fn system_time(unix_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_ns)
}

/// `2026-11-21T22:24:03.123456789Z`: always nine fractional digits, so the text sorts as the
/// time does.
pub(super) fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_nanoseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1795299517` and a leap day.
        assert_eq!(
            rfc3339(1_795_299_517_000_000_007),
            "2026-11-21T22:18:37.000000007Z"
        );
        assert_eq!(
            rfc3339(951_782_400_500_000_000),
            "2000-02-29T00:00:00.500000000Z"
        );
    }
}
