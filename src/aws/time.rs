//! UTC timestamps in the formats SigV4 needs, from `SystemTime` without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant broken into the parts SigV4 uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmzDate {
    /// `YYYYMMDDTHHMMSSZ`.
    pub timestamp: [u8; 16],
}

impl AmzDate {
    /// The instant `t`, truncated to the second.
    pub fn from_system_time(t: SystemTime) -> AmzDate {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        AmzDate::from_unix(secs)
    }

    /// The instant `secs` after the Unix epoch.
    pub fn from_unix(secs: u64) -> AmzDate {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        let (hh, mm, ss) = (rem / 3600, (rem / 60) % 60, rem % 60);
        let mut ts = [0u8; 16];
        put(&mut ts[0..4], y as u64);
        put(&mut ts[4..6], u64::from(m));
        put(&mut ts[6..8], u64::from(d));
        ts[8] = b'T';
        put(&mut ts[9..11], hh);
        put(&mut ts[11..13], mm);
        put(&mut ts[13..15], ss);
        ts[15] = b'Z';
        AmzDate { timestamp: ts }
    }

    /// `YYYYMMDDTHHMMSSZ` as text.
    pub fn timestamp_str(&self) -> &str {
        std::str::from_utf8(&self.timestamp).unwrap_or("19700101T000000Z")
    }

    /// `YYYYMMDD` as text.
    pub fn date_str(&self) -> &str {
        &self.timestamp_str()[..8]
    }
}

fn put(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the ISO 8601 UTC instants AWS gives credential expirations in:
/// `2026-11-29T23:04:29Z`, with optional fractional seconds, `Z` or `+00:00`.
pub fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    if !matches!(rest, "Z" | "z" | "+00:00" | "-00:00" | "+0000") {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss);
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + std::time::Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credential_expirations() {
        let at = |secs: u64| Some(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(parse_iso8601("2015-08-30T12:36:00Z"), at(1_440_938_160));
        assert_eq!(parse_iso8601("2015-08-30T12:36:00.123Z"), at(1_440_938_160));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00+00:00"), at(951_782_400));
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), at(0));
        for bad in [
            "",
            "2015-08-30",
            "2015-08-30T12:36:00",
            "2015-08-30T12:36:00+02:00",
            "2015-13-30T12:36:00Z",
            "2015-08-30T12:36:00.Z",
            "2015-08-3xT12:36:00Z",
            "+015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        for secs in [0u64, 86_399, 951_782_400, 4_102_444_799] {
            let t = AmzDate::from_unix(secs);
            let ts = t.timestamp_str();
            let iso = format!(
                "{}-{}-{}T{}:{}:{}Z",
                &ts[0..4],
                &ts[4..6],
                &ts[6..8],
                &ts[9..11],
                &ts[11..13],
                &ts[13..15]
            );
            assert_eq!(parse_iso8601(&iso), at(secs), "{iso}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(AmzDate::from_unix(0).timestamp_str(), "19700101T000000Z");
        assert_eq!(
            AmzDate::from_unix(1_440_938_160).timestamp_str(),
            "20150830T123600Z"
        );
        assert_eq!(
            AmzDate::from_unix(951_782_400).timestamp_str(),
            "20000229T000000Z"
        );
        assert_eq!(
            AmzDate::from_unix(4_102_444_799).timestamp_str(),
            "20991231T235959Z"
        );
        assert_eq!(AmzDate::from_unix(1_440_938_160).date_str(), "20150830");
    }
}
