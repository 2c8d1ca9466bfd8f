//! One Kubernetes audit event (`audit.k8s.io/v1` or `v1beta1`, kind `Event`), decoded with
//! borrowed strings so the hot path copies nothing; request and response bodies stay raw JSON
//! until a rule asks for them, and are then parsed once.

use std::cell::OnceCell;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{Json, Text};

/// `user` / `impersonatedUser`.
#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub groups: Vec<Text<'a>>,
    #[serde(borrow, default)]
    pub extra: Option<&'a RawValue>,
}

/// `objectRef`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    #[serde(borrow, default)]
    pub resource: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub api_group: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub subresource: Option<Text<'a>>,
}

/// `responseStatus` (a metav1.Status).
#[derive(Debug, Default, Deserialize)]
pub struct ResponseStatus<'a> {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(borrow, default)]
    pub reason: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub message: Option<Text<'a>>,
}

/// The fields of an audit event that detection reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent<'a> {
    #[serde(borrow, default)]
    pub kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub level: Option<Text<'a>>,
    #[serde(rename = "auditID", borrow, default)]
    pub audit_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub stage: Option<Text<'a>>,
    #[serde(rename = "requestURI", borrow, default)]
    pub request_uri: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub verb: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub user: UserInfo<'a>,
    #[serde(borrow, default)]
    pub impersonated_user: Option<UserInfo<'a>>,
    #[serde(rename = "sourceIPs", borrow, default)]
    pub source_ips: Vec<Text<'a>>,
    #[serde(borrow, default)]
    pub user_agent: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow, default)]
    pub response_status: Option<ResponseStatus<'a>>,
    #[serde(borrow, default)]
    pub request_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub response_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub request_received_timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub stage_timestamp: Option<Text<'a>>,
    /// v1beta1 events carry a top-level `timestamp`.
    #[serde(borrow, default)]
    pub timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub annotations: Option<Json<'a>>,
    /// The whole event text, for JSON-pointer rules and reports.
    #[serde(skip)]
    pub raw: &'a str,
    #[serde(skip)]
    request: OnceCell<Json<'a>>,
    #[serde(skip)]
    response: OnceCell<Json<'a>>,
    #[serde(skip)]
    whole: OnceCell<Json<'a>>,
}

/// Why a line is not an audit event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an audit event (kind {0:?})")]
    NotAnEvent(String),
}

fn text<'b>(s: &'b Option<Text<'_>>) -> Option<&'b str> {
    s.as_deref()
}

impl<'a> AuditEvent<'a> {
    /// Decode one event. Anything whose `kind` is not `Event` (or that lacks the event's
    /// identifying fields) is refused, so stray JSON (`{"kind": 0}`) never reaches a rule.
    pub fn parse(raw: &'a str) -> Result<Self, EventError> {
        let mut event: AuditEvent<'a> = match serde_json::from_str(raw) {
            Ok(e) => e,
            Err(e) if e.is_data() => return Err(EventError::NotAnEvent(e.to_string())),
            Err(e) => return Err(EventError::Json(e)),
        };
        match event.kind.as_deref() {
            Some("Event") | None if event.verb.is_some() || event.request_uri.is_some() => {}
            other => return Err(EventError::NotAnEvent(other.unwrap_or("none").to_owned())),
        }
        event.raw = raw;
        Ok(event)
    }

    pub fn stage(&self) -> Option<&str> {
        text(&self.stage)
    }
    pub fn verb(&self) -> Option<&str> {
        text(&self.verb)
    }
    pub fn uri(&self) -> Option<&str> {
        text(&self.request_uri)
    }
    pub fn username(&self) -> Option<&str> {
        text(&self.user.username)
    }
    pub fn resource(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| text(&o.resource))
    }
    pub fn subresource(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| text(&o.subresource)).filter(|s| !s.is_empty())
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| text(&o.namespace))
    }
    pub fn name(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| text(&o.name))
    }
    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key)?.as_str()
    }
    /// `authorization.k8s.io/decision` (`allow` / `forbid`).
    pub fn decision(&self) -> Option<&str> {
        self.annotation("authorization.k8s.io/decision")
    }
    /// The one source IP a client cannot forge: the last of `sourceIPs`.
    pub fn source_ip(&self) -> Option<&str> {
        self.source_ips.last().map(|s| s.as_ref())
    }
    /// 2xx, or 101 (an upgraded exec/attach stream).
    pub fn succeeded(&self) -> bool {
        self.code().is_some_and(|c| (200..300).contains(&c) || c == 101)
    }
    /// Stage timestamp (or the request's, or v1beta1's `timestamp`) in microseconds since the epoch.
    pub fn time_micros(&self) -> Option<i64> {
        text(&self.stage_timestamp)
            .or(text(&self.request_received_timestamp))
            .or(text(&self.timestamp))
            .and_then(parse_rfc3339_micros)
    }
    /// The event's time as written.
    pub fn time_text(&self) -> Option<&str> {
        text(&self.stage_timestamp).or(text(&self.request_received_timestamp)).or(text(&self.timestamp))
    }

    /// `requestObject`, parsed on first use.
    pub fn request_object(&self) -> Option<&Json<'a>> {
        let raw: &'a RawValue = self.request_object?;
        Some(self.request.get_or_init(|| Json::parse(raw.get()).unwrap_or_default()))
    }
    /// `responseObject`, parsed on first use.
    pub fn response_object(&self) -> Option<&Json<'a>> {
        let raw: &'a RawValue = self.response_object?;
        Some(self.response.get_or_init(|| Json::parse(raw.get()).unwrap_or_default()))
    }
    /// The resulting object: the response (the persisted object, right even for patches), else
    /// the request body.
    pub fn object(&self) -> Option<&Json<'a>> {
        self.response_object()
            .filter(|v| v.get("kind").is_some_and(|k| k != "Status"))
            .or(self.request_object())
    }
    /// The whole event as a JSON value, parsed on first use (JSON-pointer rules).
    pub fn value(&self) -> &Json<'a> {
        let raw: &'a str = self.raw;
        self.whole.get_or_init(|| Json::parse(raw).unwrap_or_default())
    }

    /// Every value of query parameter `key` in the request URI, decoded.
    pub fn query_params(&self, key: &str) -> Vec<String> {
        let Some(query) = self.uri().and_then(|u| u.split_once('?')).map(|(_, q)| q) else { return vec![] };
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

/// `%XX` and `+` decoding of a query value.
pub fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match v.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `2026-03-02T10:15:04.112233Z` (fraction optional, `Z` or `±hh:mm`) → microseconds.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros = digits.parse().ok()?;
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = (oh * 3600 + om * 60) * 1_000_000;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000 + micros) - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_fields_and_refuses_non_events() {
        let raw = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/kube-system/pods/kp/exec?command=sh&command=-c&command=id%20-u&container=c","verb":"create","user":{"username":"kubernetes-admin","groups":["system:masters"]},"sourceIPs":["198.51.100.1","203.0.113.9"],"objectRef":{"resource":"pods","namespace":"kube-system","name":"kp","subresource":"exec"},"responseStatus":{"code":101},"stageTimestamp":"2026-03-02T10:15:04.112233Z","annotations":{"authorization.k8s.io/decision":"allow"}}"#;
        let e = AuditEvent::parse(raw).unwrap();
        assert_eq!(e.subresource(), Some("exec"));
        assert_eq!(e.source_ip(), Some("203.0.113.9"));
        assert_eq!(e.query_params("command"), ["sh", "-c", "id -u"]);
        assert!(e.succeeded());
        assert_eq!(e.decision(), Some("allow"));
        assert_eq!(e.time_micros(), Some(1_772_446_504_112_233));
        assert!(AuditEvent::parse(r#"{"kind": 0}"#).is_err());
        assert!(AuditEvent::parse(r#"{"kind":"Pod","metadata":{}}"#).is_err());
        assert!(AuditEvent::parse("not json").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_rfc3339_micros("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_micros("2018-10-25T14:09:12.5Z").map(|m| m % 1_000_000), Some(500_000));
        assert_eq!(parse_rfc3339_micros("garbage"), None);
    }
}
