//! Dates as the engine, Cedar and X.509 certificates write them.

/// `2024-01-01T12:00:00.000Z`-style time in UTC with an explicit offset, the format JAXB writes
/// for `xs:dateTime` (the engine uses its local offset; the simulator runs in UTC), and a form
/// Cedar's `datetime()` reads.
pub(crate) fn iso8601(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The instant an `xs:dateTime` names, in milliseconds since the epoch: `YYYY-MM-DDTHH:MM:SS`,
/// optional fractional seconds, then `Z` or `±HH:MM` (the engine writes its local offset). `None`
/// for anything else, a time without an offset included (it names no one instant).
pub(crate) fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if text.len() < 20 || !separators.iter().all(|&(at, c)| text.as_bytes()[at] == c) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first: String = fraction[..digits].chars().chain("00".chars()).take(3).collect();
        millis = first.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = number_of(&[*h1, *h2])?;
            let minutes = number_of(&[*m1, *m2])?;
            let minutes = hours * 60 + minutes;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// The instant an X.509 validity time names, in seconds since the epoch (RFC 5280, 4.1.2.5):
/// `utc` for a UTCTime, `YYMMDDHHMMSSZ` (years 50 to 99 are 19xx, the others 20xx), otherwise a
/// GeneralizedTime, `YYYYMMDDHHMMSSZ`. RFC 5280 requires the seconds and the `Z`, so `None` for
/// any other form.
pub(crate) fn parse_x509_time(utc: bool, text: &[u8]) -> Option<i64> {
    let (year, rest) = if utc {
        let (yy, rest) = text.split_at_checked(2)?;
        let yy = number_of(yy)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
    } else {
        let (yyyy, rest) = text.split_at_checked(4)?;
        (number_of(yyyy)?, rest)
    };
    let [m1, m2, d1, d2, h1, h2, n1, n2, s1, s2, b'Z'] = *rest else {
        return None;
    };
    let (month, day) = (number_of(&[m1, m2])?, number_of(&[d1, d2])?);
    let (hour, minute, second) = (
        number_of(&[h1, h2])?,
        number_of(&[n1, n2])?,
        number_of(&[s1, s2])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn number_of(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates before and after a leap day convert correctly.
    #[test]
    fn iso8601_around_leap_day() {
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(iso8601(951_868_800_000), "2000-03-01T00:00:00.000Z");
    }

    /// The engine's local offsets and the simulator's `Z` name the same instants; what names
    /// none is refused.
    #[test]
    fn iso8601_read_back() {
        assert_eq!(parse_iso8601("2000-02-29T23:59:59.999Z"), Some(951_868_799_999));
        assert_eq!(
            parse_iso8601("2000-03-01T01:00:00.000+01:00"),
            Some(951_868_800_000)
        );
        assert_eq!(parse_iso8601("2000-02-29T19:00:00-05:00"), Some(951_868_800_000));
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.5Z"), Some(-500));
        for ms in [0, 951_782_400_000, 1_800_000_000_123] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        }
        for bad in [
            "2000-02-29T23:59:59",
            "2000-02-29 23:59:59Z",
            "2000-13-01T00:00:00Z",
            "x",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    /// Both X.509 time forms, either side of UTCTime's century pivot; other forms are refused.
    #[test]
    fn x509_times() {
        assert_eq!(parse_x509_time(true, b"000229235959Z"), Some(951_868_799));
        assert_eq!(parse_x509_time(true, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_x509_time(true, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(parse_x509_time(false, b"20500101000000Z"), Some(2_524_608_000));
        assert_eq!(parse_x509_time(false, b"40960101000000Z"), Some(67_090_118_400));
        for (utc, bad) in [
            (true, &b"0002292359Z"[..]),
            (true, b"000229235959"),
            (true, b"000229235959+0100"),
            (true, b"001329235959Z"),
            (false, b"000229235959Z"),
            (false, b"2000022923595xZ"),
        ] {
            assert_eq!(
                parse_x509_time(utc, bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
