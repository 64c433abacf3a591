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
        let weekday = WEEKDAYS[(days % 7) as usize];
        let month = MONTHS[(month - 1) as usize];
        let (hour, minute, second) = (sod / 3600, sod % 3600 / 60, sod % 60);
        if year > 9999 {
            // Five digits and more: the general formatter.
            return write!(
                f,
                "{weekday}, {day:02} {month} {year:04} {hour:02}:{minute:02}:{second:02} GMT"
            );
        }
        // Every response with legacy headers carries one: filled into a fixed layout, a third
        // of the cost of `write!` with seven arguments.
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[0..3].copy_from_slice(weekday.as_bytes());
        digits(&mut out[5..7], day);
        out[8..11].copy_from_slice(month.as_bytes());
        digits(&mut out[12..16], year);
        digits(&mut out[17..19], hour);
        digits(&mut out[20..22], minute);
        digits(&mut out[23..25], second);
        f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// Writes `v` in decimal into all of `out`, zero-padded (`v < 10^out.len()`).
fn digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
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
