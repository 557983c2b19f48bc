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

#[cfg(test)]
mod tests {
    use super::*;

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
