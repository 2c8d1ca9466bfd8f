//! The token client (`rampart token`): sign a presigned STS `GetCallerIdentity` URL with
//! `aws-sigv4`, exactly as aws-iam-authenticator and `aws eks get-token` do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningInstructions, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;

use crate::token::{PREFIX, format_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("sts AssumeRole failed: {0}")]
    AssumeRole(String),
}

/// Static credentials and when they stop working (if they are temporary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires_at: Option<i64>,
}

/// The STS host a region signs for (`sts.amazonaws.com` is scoped to us-east-1).
pub fn sts_host(region: &str) -> String {
    if region.is_empty() || region == "aws-global" {
        "sts.amazonaws.com".into()
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

/// SigV4-sign one request for `service` in `region` at `time`: what to add to it (headers, or
/// query parameters when `settings` asks for a presigned URL).
#[allow(clippy::too_many_arguments)] // one signing call's inputs, each distinct
pub(crate) fn sign_request(
    creds: &AwsCredentials,
    service: &str,
    region: &str,
    time: SystemTime,
    settings: SigningSettings,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<SigningInstructions, ClientError> {
    let identity = Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "rampart",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| ClientError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| ClientError::Signing(e.to_string()))?;
    Ok(sign(request, &params).map_err(|e| ClientError::Signing(e.to_string()))?.into_parts().0)
}

/// A `k8s-aws-v1.` token for `cluster_id`, signed at `now`; returns the token and its expiry
/// (14 minutes after signing, or earlier when the credentials expire first).
pub fn presign(
    creds: &AwsCredentials,
    cluster_id: &str,
    region: &str,
    now: i64,
) -> Result<(String, i64), ClientError> {
    let host = sts_host(region);
    let scope_region = if host == "sts.amazonaws.com" { "us-east-1" } else { region };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let base = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster_id)];
    let instructions = sign_request(creds, "sts", scope_region, time, settings, "GET", &base, &headers, &[])?;
    let mut url = base;
    for (k, v) in instructions.params() {
        url.push('&');
        url.push_str(k);
        url.push('=');
        url.push_str(&aws_query_encode(v));
    }
    let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url));
    let expiry = (now + 14 * 60).min(creds.expires_at.unwrap_or(i64::MAX));
    Ok((token, expiry))
}

/// SigV4 query encoding: unreserved characters kept, everything else `%XX`.
fn aws_query_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Credentials from the standard places, in the standard order: the `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` environment, then the shared credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`).
pub fn load_credentials(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsCredentials, ClientError> {
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(AwsCredentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN"),
            expires_at: None,
        });
    }
    let path = env("AWS_SHARED_CREDENTIALS_FILE")
        .or_else(|| env("HOME").map(|h| format!("{h}/.aws/credentials")))
        .ok_or_else(|| {
            ClientError::Credentials(
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or configure ~/.aws/credentials".into(),
            )
        })?;
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ClientError::Credentials(format!(
            "{path}: {e}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or run `aws configure`"
        ))
    })?;
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_owned());
            match k.trim() {
                "aws_access_key_id" => id = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(AwsCredentials { access_key_id, secret_access_key, session_token: token, expires_at: None })
        }
        _ => Err(ClientError::Credentials(format!(
            "profile {profile:?} in {path} has no aws_access_key_id/aws_secret_access_key"
        ))),
    }
}

/// The credential chain, in the SDKs' order: environment, web identity (IRSA:
/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), shared credentials file, container
/// credentials (Pod Identity/ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`), then
/// the EC2 instance metadata service (IMDSv2).
pub async fn resolve_credentials(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<AwsCredentials, ClientError> {
    if env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some() {
        return load_credentials(env);
    }
    if let (Some(token_file), Some(role)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
        let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_default();
        let endpoint = env("AWS_ENDPOINT_URL_STS")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://{}", sts_host(&region)));
        let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| format!("rampart-{}", now()));
        return assume_role_with_web_identity(&endpoint, &role, &session, &token_file).await;
    }
    let file_error = match load_credentials(env) {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    // A profile without static keys: credential_process, IAM Identity Center, role chaining.
    let profile_error = match crate::sdk::profile_credentials().await {
        Ok(c) => {
            return Ok(AwsCredentials {
                access_key_id: c.access_key_id().to_string(),
                secret_access_key: c.secret_access_key().to_string(),
                session_token: c.session_token().map(str::to_string),
                expires_at: c
                    .expiry()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok()),
            });
        }
        Err(e) => e,
    };
    let file_error =
        ClientError::Credentials(format!("{file_error}; the profile's other sources: {profile_error}"));
    let container_uri = env("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
        env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|p| format!("http://169.254.170.2{p}"))
    });
    if let Some(uri) = container_uri {
        let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(f) => Some(
                std::fs::read_to_string(&f)
                    .map_err(|e| ClientError::Credentials(format!("{f}: {e}")))?
                    .trim()
                    .to_owned(),
            ),
            None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        return container_credentials(&uri, token.as_deref()).await;
    }
    if env("AWS_EC2_METADATA_DISABLED").as_deref() != Some("true") {
        let imds =
            env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
        if let Ok(c) = imds_credentials(&imds).await {
            return Ok(c);
        }
    }
    Err(file_error)
}

fn json_credentials(v: &serde_json::Value) -> Result<AwsCredentials, ClientError> {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")
            .ok_or_else(|| ClientError::Credentials("no AccessKeyId in the credentials response".into()))?,
        secret_access_key: field("SecretAccessKey").ok_or_else(|| {
            ClientError::Credentials("no SecretAccessKey in the credentials response".into())
        })?,
        session_token: field("Token"),
        expires_at: field("Expiration").as_deref().and_then(parse_rfc3339),
    })
}

/// Container credentials (EKS Pod Identity, ECS): GET the URI with the authorization token.
pub async fn container_credentials(uri: &str, token: Option<&str>) -> Result<AwsCredentials, ClientError> {
    let mut req = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ClientError::Credentials(e.to_string()))?
        .get(uri);
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ClientError::Credentials(format!("container credentials: {}", e.without_url())))?;
    let status = resp.status();
    let body: serde_json::Value =
        resp.json().await.map_err(|e| ClientError::Credentials(format!("container credentials: {e}")))?;
    if !status.is_success() {
        return Err(ClientError::Credentials(format!(
            "container credentials: HTTP {}: {body}",
            status.as_u16()
        )));
    }
    json_credentials(&body)
}

/// EC2 instance role credentials through IMDSv2 (session token first).
async fn imds_credentials(base: &str) -> Result<AwsCredentials, ClientError> {
    let err = |e: reqwest::Error| ClientError::Credentials(format!("imds: {}", e.without_url()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().map_err(err)?;
    let token = http
        .put(format!("{base}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .send()
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    let url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let role = http
        .get(&url)
        .header("x-aws-ec2-metadata-token", &token)
        .send()
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    let role = role.lines().next().unwrap_or_default().trim().to_owned();
    let body: serde_json::Value = http
        .get(format!("{url}{role}"))
        .header("x-aws-ec2-metadata-token", &token)
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    json_credentials(&body)
}

/// `sts:AssumeRoleWithWebIdentity` (unsigned: the web identity token is the credential).
pub async fn assume_role_with_web_identity(
    endpoint: &str,
    role_arn: &str,
    session: &str,
    token_file: &str,
) -> Result<AwsCredentials, ClientError> {
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| ClientError::Credentials(format!("{token_file}: {e}")))?;
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
        aws_query_encode(role_arn),
        aws_query_encode(session),
        aws_query_encode(token.trim())
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body)
        .send()
        .await
        .map_err(|e| ClientError::AssumeRole(e.without_url().to_string()))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| ClientError::AssumeRole(e.to_string()))?;
    if !status.is_success() {
        return Err(ClientError::AssumeRole(format!("HTTP {}: {text}", status.as_u16())));
    }
    sts_credentials(&text)
}

/// Temporary credentials from an STS XML answer.
fn sts_credentials(text: &str) -> Result<AwsCredentials, ClientError> {
    let field = |name: &str| {
        xml_text(text, name)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::AssumeRole(format!("response has no {name}")))
    };
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
        expires_at: xml_text(text, "Expiration").and_then(parse_rfc3339),
    })
}

fn xml_text<'a>(body: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{element}>"))? + start;
    body.get(start..end)
}

/// One `sts:AssumeRole` call: the role, the session and what EKS Pod Identity adds to it
/// (session tags, transitive keys, an external id, a session policy, a duration).
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleRequest {
    pub role_arn: String,
    pub session_name: String,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    pub duration_seconds: Option<u32>,
}

impl AssumeRoleRequest {
    /// The form body STS expects.
    fn form(&self) -> String {
        let mut body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}",
            aws_query_encode(&self.role_arn),
            aws_query_encode(&self.session_name)
        );
        for (i, (key, value)) in self.tags.iter().enumerate() {
            let n = i + 1;
            body.push_str(&format!(
                "&Tags.member.{n}.Key={}&Tags.member.{n}.Value={}",
                aws_query_encode(key),
                aws_query_encode(value)
            ));
        }
        for (i, key) in self.transitive_tag_keys.iter().enumerate() {
            body.push_str(&format!("&TransitiveTagKeys.member.{}={}", i + 1, aws_query_encode(key)));
        }
        if let Some(id) = &self.external_id {
            body.push_str(&format!("&ExternalId={}", aws_query_encode(id)));
        }
        if let Some(policy) = &self.policy {
            body.push_str(&format!("&Policy={}", aws_query_encode(policy)));
        }
        if let Some(d) = self.duration_seconds {
            body.push_str(&format!("&DurationSeconds={d}"));
        }
        body
    }
}

/// What STS answered to an AssumeRole: the credentials and the assumed-role user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub credentials: AwsCredentials,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `<RoleId>:<session>`.
    pub assumed_role_id: String,
}

/// An STS error answer: HTTP status, the `<Code>` and `<Message>` of the error document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sts AssumeRole: HTTP {status}: {code}: {message}")]
pub struct StsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// `sts:AssumeRole` (signed with the given credentials) → the role's temporary credentials.
/// `endpoint` is the STS base URL (`https://sts.<region>.amazonaws.com`, or an override such as
/// `AWS_ENDPOINT_URL_STS`).
pub async fn assume_role(
    creds: &AwsCredentials,
    endpoint: &str,
    region: &str,
    role_arn: &str,
    session_name: &str,
    now: i64,
) -> Result<AwsCredentials, ClientError> {
    let request = AssumeRoleRequest {
        role_arn: role_arn.into(),
        session_name: session_name.into(),
        ..Default::default()
    };
    let http = reqwest::Client::new();
    match assume_role_with(&http, creds, endpoint, region, &request, now).await {
        Ok(assumed) => Ok(assumed.credentials),
        Err(AssumeRoleError::Sts(e)) => Err(ClientError::AssumeRole(e.to_string())),
        Err(AssumeRoleError::Client(e)) => Err(e),
    }
}

/// Why an AssumeRole failed: STS said no (with its code), or the call itself failed.
#[derive(Debug, thiserror::Error)]
pub enum AssumeRoleError {
    #[error(transparent)]
    Sts(StsError),
    #[error(transparent)]
    Client(ClientError),
}

/// `sts:AssumeRole` with every option, over the given HTTP client.
pub async fn assume_role_with(
    http: &reqwest::Client,
    creds: &AwsCredentials,
    endpoint: &str,
    region: &str,
    request: &AssumeRoleRequest,
    now: i64,
) -> Result<AssumedRole, AssumeRoleError> {
    let client_err = |e: ClientError| AssumeRoleError::Client(e);
    let body = request.form();
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let region = if region.is_empty() { "us-east-1" } else { region };
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host.as_str()), ("content-type", content_type)];
    let instructions = sign_request(
        creds,
        "sts",
        region,
        time,
        SigningSettings::default(),
        "POST",
        &url,
        &headers,
        body.as_bytes(),
    )
    .map_err(client_err)?;
    let mut req = http.post(&url).header("content-type", content_type).body(body);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let transport = |e: reqwest::Error| client_err(ClientError::AssumeRole(e.without_url().to_string()));
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let text = resp.text().await.map_err(transport)?;
    if !status.is_success() {
        return Err(AssumeRoleError::Sts(StsError {
            status: status.as_u16(),
            code: xml_text(&text, "Code").unwrap_or("Unknown").trim().to_owned(),
            message: xml_text(&text, "Message").unwrap_or(text.trim()).trim().to_owned(),
        }));
    }
    let credentials = sts_credentials(&text).map_err(client_err)?;
    let user = |name: &str| {
        xml_text(&text, name)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| client_err(ClientError::AssumeRole(format!("response has no {name}"))))
    };
    Ok(AssumedRole { credentials, arn: user("Arn")?, assumed_role_id: user("AssumedRoleId")? })
}

/// `2023-04-28T00:14:00Z` (fractions allowed) → Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let compact: String = s.chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect();
    crate::token::parse_amz_date(&format!("{compact}Z"))
}

/// `{{EC2PrivateDNSName}}` through `ec2:DescribeInstances`, signed with the server's own
/// credentials; names are cached forever per instance id (instances never change it).
pub struct Ec2Lookup {
    creds: AwsCredentials,
    endpoint: String,
    region: String,
    cache: std::sync::Mutex<std::collections::HashMap<String, String>>,
    http: reqwest::Client,
}

impl Ec2Lookup {
    /// `endpoint` defaults to `https://ec2.<region>.amazonaws.com`.
    pub fn new(creds: AwsCredentials, region: &str, endpoint: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        Ok(Ec2Lookup {
            creds,
            endpoint: endpoint.unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com")),
            region: region.to_owned(),
            cache: Default::default(),
            http,
        })
    }

    async fn describe(&self, instance_id: &str) -> Result<String, String> {
        let url = format!(
            "{}/?Action=DescribeInstances&Version=2016-11-15&InstanceId.1={}",
            self.endpoint.trim_end_matches('/'),
            aws_query_encode(instance_id)
        );
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
        let instructions = sign_request(
            &self.creds,
            "ec2",
            &self.region,
            SystemTime::now(),
            SigningSettings::default(),
            "GET",
            &url,
            &[("host", host.as_str())],
            &[],
        )
        .map_err(|e| e.to_string())?;
        let mut req = self.http.get(&url);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(|e| format!("ec2 DescribeInstances: {}", e.without_url()))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("ec2 DescribeInstances: HTTP {}: {body}", status.as_u16()));
        }
        xml_text(&body, "privateDnsName")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("failed to find node {instance_id} "))
    }
}

impl crate::mapping::InstanceResolver for Ec2Lookup {
    fn private_dns_name<'a>(&'a self, instance_id: &'a str) -> crate::mapping::DnsFuture<'a> {
        Box::pin(async move {
            if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(instance_id).cloned()) {
                return Ok(hit);
            }
            let name = self.describe(instance_id).await?;
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(instance_id.to_owned(), name.clone());
            }
            Ok(name)
        })
    }
}

/// The ExecCredential kubectl expects from an exec plugin.
pub fn exec_credential(api_version: &str, token: &str, expires_at: i64) -> serde_json::Value {
    serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {"expirationTimestamp": format_rfc3339(expires_at), "token": token},
    })
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_upstream_vector() {
        let creds = AwsCredentials {
            access_key_id: "ASIAR2TG44V6AS3ZZE7C".into(),
            secret_access_key: "4KD5cntGcVmLWRdF5wvNRuzNL5Qxmp6OKVY6Fz/Q".into(),
            session_token: None,
            expires_at: None,
        };
        let (token, expiry) = presign(&creds, "test-cluster", "us-west-2", 1_682_640_000).unwrap();
        assert_eq!(
            token,
            "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BU0lBUjJURzQ0VjZBUzNaWkU3QyUyRjIwMjMwNDI4JTJGdXMtd2VzdC0yJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyMzA0MjhUMDAwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9ZTIxMWRiYTc3YWJhOWRjNDRiMGI2YmUzOGI4ZWFhZDA5MjU5OWM1MTU3ZjYzMTQ0NDRjNWI5ZDg1NzQ3ZjVjZQ"
        );
        assert_eq!(format_rfc3339(expiry), "2023-04-28T00:14:00Z");
        let short = AwsCredentials { expires_at: Some(1_682_640_180), ..creds.clone() };
        assert_eq!(
            presign(&short, "c", "us-west-2", 1_682_640_000).unwrap().1,
            1_682_640_180,
            "credential expiry wins"
        );
        assert_eq!(parse_rfc3339("2023-04-28T00:14:00.000Z"), Some(1_682_640_840));
    }

    #[tokio::test]
    async fn container_credentials_with_a_token() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let body = if req.contains("authorization: secret-token") {
                r#"{"AccessKeyId":"ASIAPOD","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#
            } else {
                r#"{"message":"unauthorized"}"#
            };
            let status = if body.contains("ASIAPOD") { "200 OK" } else { "401 Unauthorized" };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
        });
        let c = container_credentials(&format!("http://{addr}/v1/credentials"), Some("secret-token"))
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "ASIAPOD");
        assert_eq!(c.expires_at, Some(1_893_456_000));
    }

    #[test]
    fn credential_chain() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("s".to_owned()),
            _ => None,
        };
        assert_eq!(load_credentials(&env).unwrap().access_key_id, "AKID");
        let dir = std::env::temp_dir().join(format!("rampart-creds-{}", std::process::id()));
        std::fs::write(&dir, "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n[dev]\naws_access_key_id=A2\naws_secret_access_key=S2\naws_session_token=T2\n").unwrap();
        let path = dir.display().to_string();
        let file_env = |k: &str| match k {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(path.clone()),
            "AWS_PROFILE" => Some("dev".to_owned()),
            _ => None,
        };
        let c = load_credentials(&file_env).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("A2", Some("T2")));
        std::fs::remove_file(&dir).unwrap();
        assert!(load_credentials(&|_| None).is_err());
    }
}
