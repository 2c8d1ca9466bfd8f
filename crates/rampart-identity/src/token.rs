//! `k8s-aws-v1.` tokens: decoding and every check aws-iam-authenticator makes before it asks
//! STS, in the same order (spec §1.6). The duplicate-parameter check (CVE-2022-2385) runs before
//! the allow-list, so `X-Amz-Credential` and `x-amz-credential` can never smuggle a second
//! identity past it.

use base64::Engine as _;

use crate::host::{HostError, HostVerifier};

/// Token prefix.
pub const PREFIX: &str = "k8s-aws-v1.";

/// Upstream's limit is 4 KiB; large STS session tokens need more, and upstream now proposes
/// 16 KiB, as does the issue.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A presigned URL is valid for 15 minutes after `X-Amz-Date`, whatever `X-Amz-Expires` says.
pub const VALIDITY_SECONDS: i64 = 15 * 60;

const ALLOWED: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// Why a token was rejected before the STS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("input token was not properly formatted: {0}")]
    Format(String),
    /// Host errors that upstream reports without the format prefix.
    #[error("{0}")]
    Host(String),
}

fn format(msg: impl Into<String>) -> TokenError {
    TokenError::Format(msg.into())
}

/// A token that passed every pre-STS check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The decoded URL, sent to STS unchanged.
    pub url: String,
    pub host: String,
    pub access_key_id: String,
    /// Unix seconds of `X-Amz-Date`.
    pub signed_at: i64,
}

impl PresignedUrl {
    /// When STS stops honouring the URL.
    pub fn expires_at(&self) -> i64 {
        self.signed_at + VALIDITY_SECONDS
    }
}

/// Go `url.QueryUnescape`: `+` is a space, `%XX` a byte; anything else malformed is an error.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Go `url.ParseQuery`, keeping order: `;` anywhere is an error, as are bad escapes.
fn parse_query(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        if part.contains(';') {
            return None;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((unescape(k)?, unescape(v)?));
    }
    Some(out)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds → `(year, month, day, hour, minute, second)` in UTC.
pub fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// Unix seconds → `yyyymmddTHHMMSSZ`.
pub fn format_amz_date(unix: i64) -> String {
    let (y, m, d, h, mi, s) = civil(unix);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Unix seconds → RFC 3339 (`2023-04-28T00:14:00Z`).
pub fn format_rfc3339(unix: i64) -> String {
    let (y, m, d, h, mi, s) = civil(unix);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `yyyymmddTHHMMSSZ` → Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r).filter(|x| x.bytes().all(|c| c.is_ascii_digit()))?.parse::<i64>().ok()
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(4..6)?, num(6..8)?, num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Split `scheme://authority/path?query` without normalising anything (hosts keep case and
/// port: the host check must see exactly what STS would be asked).
fn split_url(url: &str) -> Result<(&str, &str, &str, &str), TokenError> {
    let (scheme, rest) = match url.split_once(':') {
        Some((s, r))
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            (s, r)
        }
        Some(_) => return Err(format(format!("parse {url:?}: missing protocol scheme"))),
        None => ("", url),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        },
        None => ("", before_query),
    };
    Ok((scheme, authority, path, query))
}

/// Decode and check a token at time `now` (Unix seconds) for this verifier's hosts.
pub fn verify(token: &str, hosts: &HostVerifier, now: i64) -> Result<PresignedUrl, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format("token is too large"));
    }
    let encoded = token
        .strip_prefix(PREFIX)
        .ok_or_else(|| format(format!("token is missing expected {PREFIX:?} prefix")))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format(format!("illegal base64 data: {e}")))?;
    let url = String::from_utf8(bytes).map_err(|_| format("illegal base64 data: not UTF-8"))?;
    let (scheme, authority, path, raw_query) = split_url(&url)?;
    if !hosts.is_trusted_origin(scheme, authority) {
        if scheme != "https" {
            return Err(format(format!("unexpected scheme {scheme:?} in pre-signed URL")));
        }
        // Userinfo would be dropped by the host comparison upstream; refuse it outright.
        if authority.contains('@') {
            return Err(format(format!("unexpected hostname {authority:?} in pre-signed URL")));
        }
        hosts.verify(authority).map_err(|e| match e {
            HostError::Format(m) => format(m),
            HostError::Plain(m) => TokenError::Host(m),
        })?;
    }
    if path != "/" {
        return Err(format("unexpected path in pre-signed URL"));
    }
    let query = parse_query(raw_query).ok_or_else(|| format("malformed query parameter"))?;
    // CVE-2022-2385: keys that differ only in case are rejected before anything else looks.
    for (i, (k, _)) in query.iter().enumerate() {
        if query[..i].iter().any(|(other, _)| other != k && other.eq_ignore_ascii_case(k)) {
            return Err(format(format!("duplicate query parameter found: {k:?}")));
        }
    }
    for (k, _) in &query {
        if !ALLOWED.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(format(format!("non-whitelisted query parameter {k:?}")));
        }
        if query.iter().filter(|(other, _)| other == k).count() != 1 {
            return Err(format("query parameter with multiple values not supported"));
        }
    }
    let get = |name: &str| query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    if get("action") != Some("GetCallerIdentity") {
        return Err(format("unexpected action parameter in pre-signed URL"));
    }
    let signed = get("x-amz-signedheaders").unwrap_or_default();
    if !signed.split(';').any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id")) {
        return Err(format("client did not sign the x-k8s-aws-id header in the pre-signed URL"));
    }
    let expires: i64 = get("x-amz-expires").and_then(|e| e.parse().ok()).unwrap_or(-1);
    if !(0..=900).contains(&expires) {
        return Err(format(format!("invalid X-Amz-Expires parameter in pre-signed URL: {}", expires.max(0))));
    }
    let date = get("x-amz-date")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| format("X-Amz-Date parameter must be present in pre-signed URL"))?;
    let access_key_id =
        get("x-amz-credential").and_then(|c| c.split('/').next()).unwrap_or_default().to_owned();
    let signed_at = parse_amz_date(date).ok_or_else(|| {
        format(format!("error parsing X-Amz-Date parameter {date} into format 20060102T150405Z"))
    })?;
    if now > signed_at + VALIDITY_SECONDS {
        return Err(format(format!("X-Amz-Date parameter is expired (15 minute expiration) {date}")));
    }
    Ok(PresignedUrl { host: authority.to_owned(), url, access_key_id, signed_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_682_640_000; // 2023-04-28T00:00:00Z
    const NOW_TEXT: &str = "20230428T000000Z";

    fn token(url: &str) -> String {
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
    }

    fn check(url: &str) -> Result<PresignedUrl, TokenError> {
        verify(&token(url), &HostVerifier::new("aws", ""), NOW)
    }

    fn err(url: &str) -> String {
        check(url).unwrap_err().to_string()
    }

    fn valid_query() -> String {
        format!(
            "action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date={NOW_TEXT}&x-amz-expires=60"
        )
    }

    #[test]
    fn pre_sts_table_t1_to_t21() {
        let hosts = HostVerifier::new("aws", "");
        assert!(
            verify(&"\0".repeat(MAX_TOKEN_BYTES + 1), &hosts, NOW)
                .unwrap_err()
                .to_string()
                .contains("token is too large")
        );
        assert!(
            verify("k8s-aws-v2.asdfasdfa", &hosts, NOW)
                .unwrap_err()
                .to_string()
                .contains(r#"missing expected "k8s-aws-v1." prefix"#)
        );
        assert!(
            verify("k8s-aws-v1.decodingerror!", &hosts, NOW)
                .unwrap_err()
                .to_string()
                .contains("illegal base64 data")
        );
        assert!(err(":ab:cd.af:/asda").contains("missing protocol scheme"));
        assert!(err("http://").contains("unexpected scheme"));
        assert_eq!(
            err("https://google.com"),
            "input token was not properly formatted: could not parse region for pre-signed URL google.com, invalid host format: google.com"
        );
        let cn = verify(
            &token("https://sts.cn-north-1.amazonaws.com.cn/abc"),
            &HostVerifier::new("aws-cn", ""),
            NOW,
        );
        assert!(cn.unwrap_err().to_string().contains("unexpected path in pre-signed URL"));
        assert!(err("https://sts.amazonaws.com/abc").contains("unexpected path in pre-signed URL"));
        assert!(
            err("https://sts.amazonaws.com/?NoInWhiteList=abc").contains("non-whitelisted query parameter")
        );
        assert!(
            err("https://sts.amazonaws.com/?action=get&action=post")
                .contains("query parameter with multiple values not supported")
        );
        assert!(
            err("https://sts.amazonaws.com/?action=NotGetCallerIdenity")
                .contains("unexpected action parameter in pre-signed URL")
        );
        assert!(err("https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=abc%3bx-k8s-aws-i%3bdef")
            .contains("client did not sign the x-k8s-aws-id header in the pre-signed URL"));
        let q = valid_query();
        assert!(
            err(&format!(
                "https://sts.amazonaws.com/?{}",
                q.replace("x-amz-expires=60", "x-amz-expires=9999999")
            ))
            .contains("invalid X-Amz-Expires parameter")
        );
        assert!(
            err(&format!("https://sts.amazonaws.com/?{}", q.replace(NOW_TEXT, "xxxxxxx")))
                .contains("error parsing X-Amz-Date parameter")
        );
        assert!(
            err(&format!("https://sts.amazonaws.com/?{}", q.replace(NOW_TEXT, "19900422T010203Z")))
                .contains("X-Amz-Date parameter is expired")
        );
        assert!(
            err(&format!(
                "https://sts.sa-east-1.amazonaws.com/?{}",
                q.replace("x-amz-expires=60", "x-amz-expires=60%gh")
            ))
            .contains("input token was not properly formatted: malformed query parameter")
        );
        let cve = format!(
            "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAAAAAAAAAAAAAAAAA%2F20220601%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date={NOW_TEXT}&X-Amz-Expires=900&X-Amz-Security-Token=XXXXXXXXXXXXX&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&x-amz-credential=eve&X-Amz-Signature=999999999999999999"
        );
        assert!(
            err(&cve).contains("input token was not properly formatted: duplicate query parameter found:")
        );
        for host in
            ["sts.us-east-2", "sts.ap-northeast-2", "sts.ca-central-1", "sts.eu-west-1", "sts.sa-east-1"]
        {
            check(&format!("https://{host}.amazonaws.com/?{q}")).unwrap();
        }
        for (expires, ok) in
            [("0", true), ("900", true), ("-1", false), ("901", false), ("", false), ("abc", false)]
        {
            let r = check(&format!(
                "https://sts.amazonaws.com/?{}",
                q.replace("x-amz-expires=60", &format!("x-amz-expires={expires}"))
            ));
            assert_eq!(r.is_ok(), ok, "expires {expires:?}");
        }
        assert!(
            err(&format!("https://sts.amazonaws.com/?{q}&x=1;y=2")).contains("malformed query parameter")
        );
        assert!(
            err(&format!("https://sts.us-west-2.amazonaws.com:443/?{q}")).contains("unexpected hostname")
        );
        assert!(err(&format!("https://eve@sts.amazonaws.com/?{q}")).contains("unexpected hostname"));
        // Only the configured endpoint is trusted as is; a look-alike is not.
        let trusting = HostVerifier::new("aws", "").trusting("http://127.0.0.1:5000/");
        assert!(verify(&token(&format!("http://127.0.0.1:5000/?{q}")), &trusting, NOW).is_ok());
        assert!(verify(&token(&format!("http://127.0.0.1:5001/?{q}")), &trusting, NOW).is_err());
        assert!(verify(&token(&format!("https://sts.us-east-1.amazonaws.com/?{q}")), &trusting, NOW).is_ok());
    }

    #[test]
    fn upstream_vector_decodes_with_its_access_key_and_expiry() {
        let t = "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BU0lBUjJURzQ0VjZBUzNaWkU3QyUyRjIwMjMwNDI4JTJGdXMtd2VzdC0yJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyMzA0MjhUMDAwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9ZTIxMWRiYTc3YWJhOWRjNDRiMGI2YmUzOGI4ZWFhZDA5MjU5OWM1MTU3ZjYzMTQ0NDRjNWI5ZDg1NzQ3ZjVjZQ";
        let p = verify(t, &HostVerifier::new("aws", ""), NOW + 60).unwrap();
        assert_eq!(p.access_key_id, "ASIAR2TG44V6AS3ZZE7C");
        assert_eq!(p.host, "sts.us-west-2.amazonaws.com");
        assert_eq!(p.signed_at, NOW);
        assert_eq!(p.expires_at(), NOW + 900);
        assert!(verify(t, &HostVerifier::new("aws", ""), NOW + 901).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_amz_date("20230428T000000Z"), Some(NOW));
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("2023042800000Z"), None);
        assert_eq!(parse_amz_date("20231328T000000Z"), None);
        for t in [0, NOW, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t));
        }
        assert_eq!(format_rfc3339(NOW + 14 * 60), "2023-04-28T00:14:00Z");
    }
}
