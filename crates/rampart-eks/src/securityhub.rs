//! Findings to AWS Security Hub: each grouped finding as an ASFF record (the AWS Security
//! Finding Format) sent with `BatchImportFindings` in batches of 100.
//!
//! The record's id is derived from what makes two findings the same (finding id, user, object,
//! as `rampart audit` groups them) and the cluster, so sending the same finding again — the
//! next run over a growing log — updates its count and last-seen time instead of adding a
//! duplicate. Throttling is retried by the SDK's standard mode with backoff (5 attempts).

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Recommendation, RecordState, Remediation, Resource, Severity, SeverityLabel,
};
use sha2::{Digest, Sha256};

use rampart_detect::finding::{self, Finding};

/// Where the findings go and what they are about.
#[derive(Debug, Clone)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub partition: String,
    /// The EKS cluster (or any cluster's name): the findings' resource.
    pub cluster: String,
}

impl Target {
    /// Security Hub's product for findings an account imports itself.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.account, self.account
        )
    }

    pub fn cluster_arn(&self) -> String {
        format!("arn:{}:eks:{}:{}:cluster/{}", self.partition, self.region, self.account, self.cluster)
    }
}

/// Why a batch was not sent, or the account not known.
#[derive(Debug, thiserror::Error)]
pub enum SecurityHubError {
    #[error("BatchImportFindings: {0}")]
    Import(String),
    #[error("{0}")]
    Account(String),
}

fn label(severity: finding::Severity) -> SeverityLabel {
    match severity {
        finding::Severity::Critical => SeverityLabel::Critical,
        finding::Severity::High => SeverityLabel::High,
        finding::Severity::Medium => SeverityLabel::Medium,
        finding::Severity::Low => SeverityLabel::Low,
        finding::Severity::Info => SeverityLabel::Informational,
    }
}

/// At most `max` characters (ASFF bounds titles, descriptions and recommendations).
fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The record id: stable for the same finding, user and object in the same cluster.
pub fn record_id(target: &Target, finding: &Finding) -> String {
    let (id, user, object) = rampart_detect::group::key(finding);
    let digest = Sha256::digest(format!("{}\n{id}\n{user}\n{object}", target.cluster).as_bytes());
    format!("rampart/{}/{}", target.cluster, hex::encode(&digest[..16]))
}

/// One grouped finding as an ASFF record.
pub fn record(
    target: &Target,
    finding: &Finding,
    count: u64,
    last_seen: &str,
    now: &str,
) -> AwsSecurityFinding {
    let first = finding.events.first();
    let first_seen = first.map(|e| e.time()).filter(|t| !t.is_empty()).unwrap_or(now);
    let last_seen = if last_seen.is_empty() { first_seen } else { last_seen };
    let mut fields = std::collections::HashMap::new();
    fields.insert("rampart/family".to_string(), format!("{:?}", finding.family).to_lowercase());
    fields.insert("rampart/count".to_string(), count.to_string());
    fields.insert("rampart/tactic".to_string(), format!("{} {}", finding.tactic.id(), finding.tactic.name()));
    if let Some(e) = first {
        fields.insert("kubernetes/user".to_string(), e.user().to_string());
        fields.insert("kubernetes/verb".to_string(), e.verb().to_string());
        fields.insert("kubernetes/requestURI".to_string(), bounded(e.request_uri(), 1024));
        fields.insert("kubernetes/auditID".to_string(), e.audit_id().to_string());
        fields.insert("kubernetes/sourceIP".to_string(), e.source_ip().to_string());
    }
    let resource = Resource::builder()
        .r#type("AwsEksCluster")
        .id(target.cluster_arn())
        .partition(target.partition.as_str().into())
        .region(&target.region)
        .build();
    AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(record_id(target, finding))
        .product_arn(target.product_arn())
        .generator_id(bounded(&finding.id, 512))
        .aws_account_id(&target.account)
        .types(format!("TTPs/{}", finding.tactic.name()))
        .first_observed_at(first_seen)
        .last_observed_at(last_seen)
        .created_at(first_seen)
        .updated_at(now)
        .severity(Severity::builder().label(label(finding.severity)).build())
        .title(bounded(&finding.title, 256))
        .description(bounded(&finding.message, 1024))
        .remediation(
            Remediation::builder()
                .recommendation(Recommendation::builder().text(bounded(&finding.remediation, 512)).build())
                .build(),
        )
        .set_product_fields(Some(fields))
        .resources(resource)
        .record_state(RecordState::Active)
        .build()
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    pub imported: usize,
    /// `(record id, error code: message)` of the records Security Hub refused.
    pub failed: Vec<(String, String)>,
    pub batches: usize,
}

/// Security Hub's limit per `BatchImportFindings` call.
pub const BATCH: usize = 100;

/// A client for `region` from the environment's credentials, retrying throttling.
pub async fn client(region: Option<&str>) -> aws_sdk_securityhub::Client {
    let config = rampart_identity::sdk::config(region).await;
    let conf = aws_sdk_securityhub::config::Builder::from(&config)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .build();
    aws_sdk_securityhub::Client::from_conf(conf)
}

/// The caller's account, for the records (`sts:GetCallerIdentity`).
pub async fn account(region: Option<&str>) -> Result<String, SecurityHubError> {
    let config = rampart_identity::sdk::config(region).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts.get_caller_identity().send().await.map_err(|e| {
        SecurityHubError::Account(format!(
            "GetCallerIdentity: {}",
            aws_sdk_sts::error::DisplayErrorContext(e)
        ))
    })?;
    identity.account.ok_or_else(|| SecurityHubError::Account("GetCallerIdentity returned no account".into()))
}

/// Send the records, 100 per call.
pub async fn export(
    client: &aws_sdk_securityhub::Client,
    records: Vec<AwsSecurityFinding>,
) -> Result<Exported, SecurityHubError> {
    let mut out = Exported::default();
    for batch in records.chunks(BATCH) {
        let answer =
            client.batch_import_findings().set_findings(Some(batch.to_vec())).send().await.map_err(|e| {
                SecurityHubError::Import(aws_sdk_securityhub::error::DisplayErrorContext(e).to_string())
            })?;
        out.batches += 1;
        out.imported += usize::try_from(answer.success_count.unwrap_or_default()).unwrap_or_default();
        for failed in answer.failed_findings.unwrap_or_default() {
            out.failed.push((
                failed.id.unwrap_or_default(),
                format!(
                    "{}: {}",
                    failed.error_code.unwrap_or_default(),
                    failed.error_message.unwrap_or_default()
                ),
            ));
        }
    }
    Ok(out)
}
