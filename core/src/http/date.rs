//! `Date` header values (IMF-fixdate, RFC 9110 §5.6.7), from a caller-supplied wall clock.

use core::fmt;

/// Renders Unix milliseconds as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`: the same text
/// JavaScript's `new Date().toUTCString()` produces, which is what express-rate-limit writes in
/// `Date` (`source/headers.ts`, `setLegacyHeaders`). Sub-second digits are dropped (floor), as
/// `toUTCString` does.
pub(crate) struct HttpDate(pub u64);

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let days = secs / 86_400;
        let sod = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            WEEKDAYS[(days % 7) as usize],
            day,
            MONTHS[(month - 1) as usize],
            year,
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`, unsigned since `days >= 0`).
const fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
