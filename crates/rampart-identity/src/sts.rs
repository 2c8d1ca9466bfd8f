//! The STS `GetCallerIdentity` round trip and the identity it yields (spec §1.8–1.9).
//!
//! The presigned URL is fetched as sent (GET, `x-k8s-aws-id: <cluster id>`,
//! `accept: application/json`, 10 s timeout, redirects never followed). A signature over a
//! different cluster id fails at STS, which is what binds a token to one cluster.

use std::time::Duration;

use serde_json::Value;

use crate::arn::{IdentityKind, canonicalize};
use crate::token::PresignedUrl;

/// Who STS says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub arn: String,
    pub canonical_arn: String,
    pub account_id: String,
    pub user_id: String,
    pub session_name: String,
    pub access_key_id: String,
    pub sts_endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("sts getCallerIdentity was throttled: {0}")]
    Throttled(String),
    #[error("sts getCallerIdentity failed: {0}")]
    Failed(String),
}

/// Talks to STS (or to an explicit override endpoint, for tests and private endpoints; the
/// token's own host must still have passed the allow-list).
#[derive(Debug, Clone)]
pub struct StsClient {
    http: reqwest::Client,
    cluster_id: String,
    endpoint_override: Option<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    // Go's encoding/json matches field names case-insensitively.
    v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// `(Arn, UserId, Account)` from a JSON body.
fn parse_json(body: &str) -> Result<(String, String, String), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let result = field(&v, "GetCallerIdentityResponse").and_then(|r| field(r, "GetCallerIdentityResult"));
    let get = |name: &str| {
        result.and_then(|r| field(r, name)).and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    Ok((get("Arn"), get("UserId"), get("Account")))
}

/// `(Arn, UserId, Account)` from an XML body (STS answers XML when a proxy drops the Accept
/// header; moto always does). Strict: only the three elements directly inside
/// `GetCallerIdentityResult`, each at most once.
fn parse_xml(body: &str) -> Result<(String, String, String), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let (mut arn, mut user_id, mut account) = (None, None, None);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let in_result = path.len() >= 2 && path[path.len() - 2] == "GetCallerIdentityResult";
                if in_result {
                    let text = t.unescape().map_err(|e| e.to_string())?.into_owned();
                    let slot = match path.last().map(String::as_str) {
                        Some("Arn") => &mut arn,
                        Some("UserId") => &mut user_id,
                        Some("Account") => &mut account,
                        _ => continue,
                    };
                    if slot.replace(text).is_some() {
                        return Err("duplicate element in GetCallerIdentityResult".into());
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((arn.unwrap_or_default(), user_id.unwrap_or_default(), account.unwrap_or_default()))
}

/// Turn STS's answer into an identity (spec §1.9).
pub fn identity(arn: &str, user_id: &str, account: &str, url: &PresignedUrl) -> Result<Identity, StsError> {
    let (kind, canonical_arn) = canonicalize(arn).map_err(|e| StsError::Failed(e.to_string()))?;
    let (user_id, session_name) = match kind {
        IdentityKind::User | IdentityKind::Root | IdentityKind::FederatedUser => {
            (user_id.to_owned(), String::new())
        }
        IdentityKind::AssumedRole | IdentityKind::Role => {
            match user_id.split(':').collect::<Vec<_>>().as_slice() {
                [id, session] => ((*id).to_owned(), (*session).to_owned()),
                _ => return Err(StsError::Failed(format!("malformed UserID {user_id:?}"))),
            }
        }
    };
    Ok(Identity {
        arn: arn.to_owned(),
        canonical_arn,
        account_id: account.to_owned(),
        user_id,
        session_name,
        access_key_id: url.access_key_id.clone(),
        sts_endpoint: url.host.clone(),
    })
}

impl StsClient {
    pub fn new(cluster_id: impl Into<String>, endpoint_override: Option<String>) -> Result<Self, StsError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StsError::Failed(e.to_string()))?;
        Ok(StsClient { http, cluster_id: cluster_id.into(), endpoint_override })
    }

    /// Ask STS who signed the URL.
    pub async fn get_caller_identity(&self, url: &PresignedUrl) -> Result<Identity, StsError> {
        let target = match &self.endpoint_override {
            Some(base) => format!(
                "{}/?{}",
                base.trim_end_matches('/'),
                url.url.split_once('?').map(|(_, q)| q).unwrap_or_default()
            ),
            None => url.url.clone(),
        };
        let response = self
            .http
            .get(&target)
            .header("x-k8s-aws-id", &self.cluster_id)
            .header("accept", "application/json")
            .send()
            .await
            // Without the URL: it is a bearer credential for 15 minutes.
            .map_err(|e| {
                StsError::Failed(format!("error during GET: {} on {} endpoint", e.without_url(), url.host))
            })?;
        let status = response.status();
        let body =
            response.text().await.map_err(|e| StsError::Failed(format!("error reading HTTP result: {e}")))?;
        if status != reqwest::StatusCode::OK {
            if body.contains("Throttling") {
                return Err(StsError::Throttled(body));
            }
            return Err(StsError::Failed(format!(
                "error from AWS (expected 200, got {}) on {} endpoint. Body: {body}",
                status.as_u16(),
                url.host
            )));
        }
        let (arn, user_id, account) =
            if body.trim_start().starts_with('<') { parse_xml(&body) } else { parse_json(&body) }
                .map_err(StsError::Failed)?;
        identity(&arn, &user_id, &account, url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> PresignedUrl {
        PresignedUrl {
            url: "https://sts.amazonaws.com/?action=GetCallerIdentity".into(),
            host: "sts.amazonaws.com".into(),
            access_key_id: "ASIABCDEFGHIJKLMNOPQ".into(),
            signed_at: 0,
        }
    }

    #[test]
    fn identity_rows_s7_to_s12() {
        assert!(
            identity("arn", "userid", "1000", &url())
                .unwrap_err()
                .to_string()
                .contains("arn 'arn' is invalid:")
        );
        assert!(
            identity("arn:aws:iam::123456789012:role/Alice", "not:vailid:userid", "1", &url())
                .unwrap_err()
                .to_string()
                .contains("malformed UserID")
        );
        let user = identity("arn:aws:iam::123456789012:user/Alice", "Alice", "123456789012", &url()).unwrap();
        assert_eq!(
            (user.user_id.as_str(), user.session_name.as_str(), user.access_key_id.as_str()),
            ("Alice", "", "ASIABCDEFGHIJKLMNOPQ")
        );
        assert_eq!(user.canonical_arn, user.arn);
        let role =
            identity("arn:aws:iam::123456789012:role/Alice", "Alice:session-name", "1", &url()).unwrap();
        assert_eq!((role.user_id.as_str(), role.session_name.as_str()), ("Alice", "session-name"));
        let assumed =
            identity("arn:aws:sts::123456789012:assumed-role/Alice/extra", "Alice:session-name", "1", &url())
                .unwrap();
        assert_eq!(assumed.canonical_arn, "arn:aws:iam::123456789012:role/Alice");
        assert_eq!(assumed.arn, "arn:aws:sts::123456789012:assumed-role/Alice/extra");
        let fed =
            identity("arn:aws:sts::123456789012:federated-user/Alice", "123456789012:Alice", "1", &url())
                .unwrap();
        assert_eq!(fed.user_id, "123456789012:Alice");
        let root =
            identity("arn:aws:iam::123456789012:root", "123456789012", "123456789012", &url()).unwrap();
        assert_eq!(root.user_id, "123456789012");
    }

    #[test]
    fn bodies() {
        let json = r#"{"GetCallerIdentityResponse":{"getcalleridentityresult":{"Account":"1","Arn":"a","UserId":"u"},"ResponseMetadata":{"RequestId":"r"}}}"#;
        assert_eq!(parse_json(json).unwrap(), ("a".into(), "u".into(), "1".into()));
        assert!(parse_json("xxxx").unwrap_err().contains("expected value"));
        let xml = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/x</Arn><UserId>AIDA</UserId><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        assert_eq!(parse_xml(xml).unwrap(), ("arn:aws:iam::1:user/x".into(), "AIDA".into(), "1".into()));
        let twice = xml.replace("<Account>1</Account>", "<Account>1</Account><Arn>arn:aws:iam::2:root</Arn>");
        assert!(parse_xml(&twice).is_err());
    }

    /// A one-shot HTTP stub: answers every request with `status` and `body`, and reports the
    /// request it saw.
    async fn stub(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap();
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nlocation: http://{addr}/elsewhere\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
        (format!("http://{addr}"), rx)
    }

    #[tokio::test]
    async fn sts_round_trip_s1_to_s13() {
        let ok_body = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"123456789012","Arn":"arn:aws:iam::123456789012:user/Alice","UserId":"Alice"}}}"#;
        let (base, seen) = stub("200 OK", ok_body).await;
        let client = StsClient::new("my-cluster", Some(base)).unwrap();
        let id = client.get_caller_identity(&url()).await.unwrap();
        assert_eq!(id.canonical_arn, "arn:aws:iam::123456789012:user/Alice");
        let request = seen.await.unwrap().to_lowercase();
        assert!(request.starts_with("get /?action=getcalleridentity"), "{request}");
        assert!(
            request.contains("x-k8s-aws-id: my-cluster") && request.contains("accept: application/json"),
            "{request}"
        );

        let (base, _) =
            stub("400 Bad Request", r#"{"Error":{"Code":"Throttling","Message":"Rate exceeded"}}"#).await;
        let e = StsClient::new("c", Some(base)).unwrap().get_caller_identity(&url()).await.unwrap_err();
        assert!(matches!(e, StsError::Throttled(_)), "{e}");
        let (base, _) = stub("403 Forbidden", "SignatureDoesNotMatch").await;
        let e = StsClient::new("c", Some(base)).unwrap().get_caller_identity(&url()).await.unwrap_err();
        assert!(e.to_string().contains("error from AWS (expected 200, got 403)"), "{e}");
        let (base, _) = stub("302 Found", ok_body).await;
        let e = StsClient::new("c", Some(base)).unwrap().get_caller_identity(&url()).await.unwrap_err();
        assert!(e.to_string().contains("got 302"), "redirects are not followed: {e}");
        let (base, _) = stub("200 OK", "xxxx").await;
        let e = StsClient::new("c", Some(base)).unwrap().get_caller_identity(&url()).await.unwrap_err();
        assert!(e.to_string().contains("expected value"), "{e}");
        let e = StsClient::new("c", Some("http://127.0.0.1:1".into()))
            .unwrap()
            .get_caller_identity(&url())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("error during GET"), "{e}");
    }
}
