//! One Kubernetes audit event (`audit.k8s.io/v1` or `v1beta1`, kind `Event`).
//!
//! A [`Document`] owns the parsed JSON of one line (envelope and bodies, parsed in one go); an
//! [`AuditEvent`] is a view of it with the envelope fields detection reads picked out once, so
//! the detectors' many reads of the verb, user or resource are field loads, not key searches.

use std::cell::OnceCell;

use smallvec::SmallVec;

use crate::json::{self, Json, JsonContainerTrait, JsonExt, JsonValueTrait};
use crate::workload::PodView;

/// `user` / `impersonatedUser`.
#[derive(Debug, Default, Clone)]
pub struct UserInfo<'d> {
    pub username: Option<&'d str>,
    pub uid: Option<&'d str>,
    pub groups: SmallVec<[&'d str; 4]>,
    pub extra: Option<&'d Json>,
}

/// `objectRef`.
#[derive(Debug, Default, Clone)]
pub struct ObjectRef<'d> {
    pub resource: Option<&'d str>,
    pub namespace: Option<&'d str>,
    pub name: Option<&'d str>,
    pub api_group: Option<&'d str>,
    pub subresource: Option<&'d str>,
}

/// `responseStatus` (a metav1.Status).
#[derive(Debug, Default, Clone)]
pub struct ResponseStatus<'d> {
    pub code: Option<i64>,
    pub reason: Option<&'d str>,
    pub message: Option<&'d str>,
}

/// One parsed line: its text and its JSON.
#[derive(Debug)]
pub struct Document<'a> {
    /// The event text as read, for reports and `jevt.obj`.
    pub raw: &'a str,
    pub json: Json,
}

/// The fields of an audit event that detection reads, borrowed from its [`Document`].
#[derive(Debug, Clone)]
pub struct AuditEvent<'d> {
    pub kind: Option<&'d str>,
    pub level: Option<&'d str>,
    pub audit_id: Option<&'d str>,
    pub stage: Option<&'d str>,
    pub request_uri: Option<&'d str>,
    pub verb: Option<&'d str>,
    pub user: UserInfo<'d>,
    pub impersonated_user: Option<UserInfo<'d>>,
    pub source_ips: SmallVec<[&'d str; 2]>,
    pub user_agent: Option<&'d str>,
    pub object_ref: Option<ObjectRef<'d>>,
    pub response_status: Option<ResponseStatus<'d>>,
    pub request_object: Option<&'d Json>,
    pub response_object: Option<&'d Json>,
    pub request_received_timestamp: Option<&'d str>,
    pub stage_timestamp: Option<&'d str>,
    /// v1beta1 events carry a top-level `timestamp`.
    pub timestamp: Option<&'d str>,
    pub annotations: Option<&'d Json>,
    /// `authorization.k8s.io/decision`, picked out of the annotations (read for every event).
    decision: Option<&'d str>,
    /// The whole event text.
    pub raw: &'d str,
    /// The whole event, for JSON-pointer rules.
    pub json: &'d Json,
    /// Text derived from the event on first use.
    pub derived: Derived,
    /// The event time, parsed on first use (windows, baselines and Falco all ask).
    micros: OnceCell<Option<i64>>,
    /// The request's pod spec, read on first use (boxed: most events have none, and the view
    /// is large).
    request_pod: OnceCell<Option<Box<PodView<'d>>>>,
    /// This is the stage at which a pod session (exec, attach, port-forward) is judged: its
    /// ResponseStarted, or its ResponseComplete when the log holds no ResponseStarted for it
    /// (audit policies that omit the stage). Set from the stage here; the analyzer sets it on
    /// a ResponseComplete whose ResponseStarted it has not seen.
    pub session_start: bool,
}

/// How many [`Derived`] slots there are.
pub const DERIVED_SLOTS: usize = 4;

/// Text computed from an event once and then reused: Falco conditions read some fields many
/// times per event (the raw time in every `k8s_audit_never_true`, a ConfigMap's serialized
/// data in a dozen `contains`), and each read would otherwise format or serialize again.
/// The slots are assigned by the reader (`falco::fields`).
#[derive(Debug, Default, Clone)]
pub struct Derived([OnceCell<Option<String>>; DERIVED_SLOTS]);

impl Derived {
    /// The text in `slot`, computed by `compute` on first use.
    pub fn get(&self, slot: usize, compute: impl FnOnce() -> Option<String>) -> Option<&str> {
        self.0.get(slot)?.get_or_init(compute).as_deref()
    }
}

/// Why a line is not an audit event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    Json(#[from] sonic_rs::Error),
    #[error("not an audit event ({0})")]
    NotAnEvent(String),
}

impl<'a> Document<'a> {
    /// Parse one line of JSON.
    pub fn parse(raw: &'a str) -> Result<Self, EventError> {
        Ok(Document { raw, json: json::parse(raw)? })
    }

    /// The audit event in it. Anything whose `kind` is not `Event` (or that lacks the event's
    /// identifying fields) is refused, so stray JSON (`{"kind": 0}`) never reaches a rule.
    pub fn event(&self) -> Result<AuditEvent<'_>, EventError> {
        AuditEvent::from_json(self.raw, &self.json)
    }
}

/// A string field; other types read as absent (the API server never writes them).
fn string(v: &Json) -> Option<&str> {
    v.as_str()
}

fn strings<'d, A: smallvec::Array<Item = &'d str>>(v: &'d Json) -> SmallVec<A> {
    v.as_array().into_iter().flat_map(|a| a.iter()).filter_map(|s| s.as_str()).collect()
}

fn user_info(v: &Json) -> UserInfo<'_> {
    let mut user = UserInfo::default();
    for (key, value) in v.entries() {
        match key {
            "username" => user.username = string(value),
            "uid" => user.uid = string(value),
            "groups" => user.groups = strings(value),
            "extra" => user.extra = Some(value),
            _ => {}
        }
    }
    user
}

fn object_ref(v: &Json) -> ObjectRef<'_> {
    let mut r = ObjectRef::default();
    for (key, value) in v.entries() {
        match key {
            "resource" => r.resource = string(value),
            "namespace" => r.namespace = string(value),
            "name" => r.name = string(value),
            "apiGroup" => r.api_group = string(value),
            "subresource" => r.subresource = string(value),
            _ => {}
        }
    }
    r
}

fn response_status(v: &Json) -> ResponseStatus<'_> {
    let mut s = ResponseStatus::default();
    for (key, value) in v.entries() {
        match key {
            "code" => s.code = value.as_i64(),
            "reason" => s.reason = string(value),
            "message" => s.message = string(value),
            _ => {}
        }
    }
    s
}

/// A body, unless absent or `null`.
fn body(v: &Json) -> Option<&Json> {
    (!v.is_null()).then_some(v)
}

impl<'d> AuditEvent<'d> {
    /// Pick the envelope fields out of a parsed event (one pass over its keys).
    pub fn from_json(raw: &'d str, json: &'d Json) -> Result<Self, EventError> {
        let Some(fields) = json.as_object() else {
            return Err(EventError::NotAnEvent("not an object".into()));
        };
        let mut e = AuditEvent {
            kind: None,
            level: None,
            audit_id: None,
            stage: None,
            request_uri: None,
            verb: None,
            user: UserInfo::default(),
            impersonated_user: None,
            source_ips: SmallVec::new(),
            user_agent: None,
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: None,
            stage_timestamp: None,
            timestamp: None,
            annotations: None,
            decision: None,
            raw,
            json,
            derived: Derived::default(),
            micros: OnceCell::new(),
            request_pod: OnceCell::new(),
            session_start: false,
        };
        let mut kind_seen = None;
        for (key, value) in fields.iter() {
            match key {
                "kind" => {
                    kind_seen = Some(value);
                    e.kind = string(value);
                }
                "level" => e.level = string(value),
                "auditID" => e.audit_id = string(value),
                "stage" => e.stage = string(value),
                "requestURI" => e.request_uri = string(value),
                "verb" => e.verb = string(value),
                "user" => e.user = user_info(value),
                "impersonatedUser" => e.impersonated_user = value.is_object().then(|| user_info(value)),
                "sourceIPs" => e.source_ips = strings(value),
                "userAgent" => e.user_agent = string(value),
                "objectRef" => e.object_ref = value.is_object().then(|| object_ref(value)),
                "responseStatus" => e.response_status = value.is_object().then(|| response_status(value)),
                "requestObject" => e.request_object = body(value),
                "responseObject" => e.response_object = body(value),
                "requestReceivedTimestamp" => e.request_received_timestamp = string(value),
                "stageTimestamp" => e.stage_timestamp = string(value),
                "timestamp" => e.timestamp = string(value),
                "annotations" => {
                    e.annotations = value.is_object().then_some(value);
                    e.decision = value.get("authorization.k8s.io/decision").and_then(string);
                }
                _ => {}
            }
        }
        match (kind_seen, e.kind) {
            (None, _) | (_, Some("Event")) => {}
            (Some(k), _) => return Err(EventError::NotAnEvent(format!("kind {k}"))),
        }
        if e.verb.is_none() && e.request_uri.is_none() {
            return Err(EventError::NotAnEvent("no verb or requestURI".into()));
        }
        e.session_start = e.pod_session() && e.stage == Some("ResponseStarted");
        Ok(e)
    }

    /// A long-running pod session: exec, attach or port-forward.
    pub fn pod_session(&self) -> bool {
        self.resource() == Some("pods")
            && matches!(self.subresource(), Some("exec" | "attach" | "portforward"))
    }

    pub fn stage(&self) -> Option<&'d str> {
        self.stage
    }
    pub fn verb(&self) -> Option<&'d str> {
        self.verb
    }
    pub fn uri(&self) -> Option<&'d str> {
        self.request_uri
    }
    pub fn username(&self) -> Option<&'d str> {
        self.user.username
    }
    pub fn resource(&self) -> Option<&'d str> {
        self.object_ref.as_ref().and_then(|o| o.resource)
    }
    pub fn subresource(&self) -> Option<&'d str> {
        self.object_ref.as_ref().and_then(|o| o.subresource).filter(|s| !s.is_empty())
    }
    pub fn namespace(&self) -> Option<&'d str> {
        self.object_ref.as_ref().and_then(|o| o.namespace)
    }
    pub fn name(&self) -> Option<&'d str> {
        self.object_ref.as_ref().and_then(|o| o.name)
    }
    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }
    pub fn annotation(&self, key: &str) -> Option<&'d str> {
        self.annotations?.get(key)?.as_str()
    }
    /// `authorization.k8s.io/decision` (`allow` / `forbid`).
    pub fn decision(&self) -> Option<&'d str> {
        self.decision
    }
    /// The one source IP a client cannot forge: the last of `sourceIPs`.
    pub fn source_ip(&self) -> Option<&'d str> {
        self.source_ips.last().copied()
    }
    /// 2xx, or 101 (an upgraded exec/attach stream).
    pub fn succeeded(&self) -> bool {
        self.code().is_some_and(|c| (200..300).contains(&c) || c == 101)
    }
    /// Stage timestamp (or the request's, or v1beta1's `timestamp`) in microseconds since the epoch.
    pub fn time_micros(&self) -> Option<i64> {
        *self.micros.get_or_init(|| self.time_text().and_then(parse_rfc3339_micros))
    }
    /// The event's time as written.
    pub fn time_text(&self) -> Option<&'d str> {
        self.stage_timestamp.or(self.request_received_timestamp).or(self.timestamp)
    }

    /// `requestObject`.
    pub fn request_object(&self) -> Option<&'d Json> {
        self.request_object
    }
    /// `requestObject.spec` as a pod spec, read once (Falco's `ka.req.pod.*` fields).
    pub fn request_pod(&self) -> Option<&PodView<'d>> {
        let request = self.request_object;
        self.request_pod
            .get_or_init(|| request.and_then(|r| r.get("spec")).map(|spec| Box::new(PodView::of(spec))))
            .as_deref()
    }
    /// `responseObject`.
    pub fn response_object(&self) -> Option<&'d Json> {
        self.response_object
    }
    /// The resulting object: the response (the persisted object, right even for patches), else
    /// the request body.
    pub fn object(&self) -> Option<&'d Json> {
        self.response_object
            .filter(|v| v.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k != "Status"))
            .or(self.request_object)
    }
    /// The whole event as a JSON value (JSON-pointer rules).
    pub fn value(&self) -> &'d Json {
        self.json
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
/// Runs on every event (windows, baselines), so it reads digits directly.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |at: usize, n: usize| -> Option<i64> {
        b.get(at..at + n)?
            .iter()
            .try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
    };
    let (y, mo, d) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (h, mi, se) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000;
        while let Some(digit) = b.get(i).filter(|c| c.is_ascii_digit()) {
            micros += i64::from(digit - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = (digits(i + 1, 2)? * 3600 + digits(i + 4, 2)? * 60) * 1_000_000;
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

/// Tests' shorthand: the event of `raw`, its document leaked so the view can be returned.
#[cfg(test)]
pub(crate) fn test_event(raw: &str) -> AuditEvent<'static> {
    #[allow(clippy::unwrap_used)]
    let doc: &'static Document<'static> =
        Box::leak(Box::new(Document::parse(Box::leak(raw.to_owned().into_boxed_str())).unwrap()));
    #[allow(clippy::unwrap_used)]
    doc.event().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_fields_and_refuses_non_events() {
        let raw = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/kube-system/pods/kp/exec?command=sh&command=-c&command=id%20-u&container=c","verb":"create","user":{"username":"kubernetes-admin","groups":["system:masters"]},"sourceIPs":["198.51.100.1","203.0.113.9"],"objectRef":{"resource":"pods","namespace":"kube-system","name":"kp","subresource":"exec"},"responseStatus":{"code":101},"stageTimestamp":"2026-03-02T10:15:04.112233Z","annotations":{"authorization.k8s.io/decision":"allow"}}"#;
        let doc = Document::parse(raw).unwrap();
        let e = doc.event().unwrap();
        assert_eq!(e.subresource(), Some("exec"));
        assert_eq!(e.source_ip(), Some("203.0.113.9"));
        assert_eq!(e.query_params("command"), ["sh", "-c", "id -u"]);
        assert!(e.succeeded());
        assert_eq!(e.decision(), Some("allow"));
        assert_eq!(e.time_micros(), Some(1_772_446_504_112_233));
        assert_eq!(e.user.groups.as_slice(), ["system:masters"]);
        let refused =
            |raw: &str| Document::parse(raw).and_then(|d| d.event().map(|_| ())).unwrap_err().to_string();
        assert_eq!(refused(r#"{"kind": 0, "verb": "get"}"#), "not an audit event (kind 0)");
        assert_eq!(refused(r#"{"kind":"Pod","metadata":{}}"#), r#"not an audit event (kind "Pod")"#);
        assert_eq!(refused(r#"{"kind":"Event"}"#), "not an audit event (no verb or requestURI)");
        assert_eq!(refused("[1]"), "not an audit event (not an object)");
        assert!(refused("not json").starts_with("not JSON"));
        // Fields of another type read as absent; a null body is no body.
        let doc =
            Document::parse(r#"{"verb":"get","user":{"username":7,"groups":["a",1]},"requestObject":null}"#)
                .unwrap();
        let e = doc.event().unwrap();
        assert_eq!((e.username(), e.user.groups.as_slice(), e.request_object()), (None, &["a"][..], None));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_rfc3339_micros("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_micros("2018-10-25T14:09:12.5Z").map(|m| m % 1_000_000), Some(500_000));
        assert_eq!(parse_rfc3339_micros("2026-03-02T10:15:04.112233999Z"), Some(1_772_446_504_112_233));
        assert_eq!(
            parse_rfc3339_micros("2026-03-02T10:15:04-00:30"),
            Some(1_772_446_504_000_000 + 1_800_000_000)
        );
        for bad in [
            "garbage",
            "2026-13-02T10:15:04Z",
            "2026-03-02T10:15:04",
            "2026-03-02T10:15:04Zjunk",
            "2026-0a-02T10:15:04Z",
        ] {
            assert_eq!(parse_rfc3339_micros(bad), None, "{bad}");
        }
    }
}
