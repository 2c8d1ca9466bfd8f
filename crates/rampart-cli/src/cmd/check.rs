//! `rampart check`: decide one SubjectAccessReview or AdmissionReview offline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rampart_policy::Engine;
use rampart_policy::tier::AuditHit;
use rampart_types::sar::{NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec};
use rampart_types::{Diagnostic, admission, sar};
use serde::Serialize;

use super::PolicyArgs;
use crate::output::{self, Format};
use crate::selector;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart check -p policies/ review.json
    rampart check -p policies/ --user sample-user --group requires-labels \\
        --verb list --resource configmaps -n default -l owner=sample-user
    rampart check -p policies/ --user alice --verb get --path /healthz

EXIT STATUS:
    0 allowed; 1 denied, or nothing allows it (no opinion); 2 usage or I/O error")]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// A SubjectAccessReview or AdmissionReview (JSON or YAML). Use `-` for stdin.
    /// Without it, the request is built from the flags below.
    #[arg(value_name = "REVIEW")]
    pub review: Option<PathBuf>,
    /// Requesting user name (e.g. alice, system:serviceaccount:ns:name).
    #[arg(long)]
    pub user: Option<String>,
    /// Group of the user (repeatable).
    #[arg(long = "group", short = 'g')]
    pub groups: Vec<String>,
    /// User uid (the principal's entity id).
    #[arg(long)]
    pub uid: Option<String>,
    /// Extra user info, KEY=VALUE (repeatable).
    #[arg(long = "extra", value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
    /// Verb (get, list, watch, create, update, patch, delete, impersonate, …).
    #[arg(long)]
    pub verb: Option<String>,
    /// Resource, optionally with subresource: `pods`, `pods/log`.
    #[arg(long)]
    pub resource: Option<String>,
    /// API group of the resource (empty for core).
    #[arg(long, default_value = "")]
    pub api_group: String,
    /// API version of the resource.
    #[arg(long, default_value = "v1")]
    pub api_version: String,
    /// Namespace of the request (empty: cluster-scoped).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Object name.
    #[arg(long)]
    pub name: Option<String>,
    /// Label selector, as `kubectl -l` (`owner=alice`, `tier in (a,b)`).
    #[arg(long = "selector", short = 'l')]
    pub label_selector: Option<String>,
    /// Field selector, as `kubectl --field-selector` (`spec.nodeName=n1`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Non-resource URL path (e.g. /healthz); replaces --resource.
    #[arg(long)]
    pub path: Option<String>,
    /// Decide with a file of unified policies instead (one policy for authorization and
    /// admission; in progress): the authorization phase, and with --object the admission
    /// phase too. A conditional answer exits 0, as the apiserver would allow it.
    #[arg(long, value_name = "FILE", conflicts_with = "review")]
    pub unified: Option<PathBuf>,
    /// With --unified: the object being written (JSON or YAML), to finish a conditional answer.
    #[arg(long, value_name = "FILE", requires = "unified")]
    pub object: Option<PathBuf>,
    /// With --unified: the stored object (update, patch, delete).
    #[arg(long, value_name = "FILE", requires = "unified")]
    pub old_object: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub kind: &'static str,
    /// `Allow`, `Deny`, `NoOpinion` (authorization); `Allowed`, `Denied` (admission).
    pub decision: String,
    pub tier: Option<String>,
    pub reason: String,
    pub diagnostic: Diagnostic,
    pub would_deny: Vec<String>,
    pub message: Option<String>,
}

pub(super) fn read_review(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    // JSON is YAML, so one parser reads both; errors name line and column.
    serde_yaml::from_str(&text).with_context(|| format!("{} is not JSON or YAML", path.display()))
}

/// `--extra KEY=VALUE` flags as the user-info extra map (repeated keys collect values).
pub(super) fn parse_extra(flags: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kv in flags {
        let (k, v) = kv.split_once('=').with_context(|| format!("--extra {kv:?}: expected KEY=VALUE"))?;
        extra.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    Ok(extra)
}

/// A request as flags (or a test file) describe it.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Request {
    pub user: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub uid: Option<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
    pub verb: Option<String>,
    pub resource: Option<String>,
    #[serde(default)]
    pub api_group: String,
    pub api_version: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub path: Option<String>,
}

impl Request {
    /// The SubjectAccessReview spec it stands for; errors name the missing field.
    pub(super) fn spec(&self) -> anyhow::Result<SubjectAccessReviewSpec> {
        let user = self.user.clone().context("give a REVIEW file, or at least --user and --verb")?;
        let verb = self.verb.clone().context("--verb is required (get, list, create, …)")?;
        let mut spec = SubjectAccessReviewSpec {
            user: Some(user),
            groups: Some(self.groups.clone()),
            uid: self.uid.clone(),
            extra: (!self.extra.is_empty()).then(|| self.extra.clone()),
            ..Default::default()
        };
        if let Some(path) = &self.path {
            spec.non_resource_attributes =
                Some(NonResourceAttributes { path: Some(path.clone()), verb: Some(verb) });
            return Ok(spec);
        }
        let resource =
            self.resource.clone().context("--resource (or --path for a non-resource URL) is required")?;
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
            None => (resource, None),
        };
        spec.resource_attributes = Some(ResourceAttributes {
            verb: Some(verb),
            group: Some(self.api_group.clone()),
            version: Some(self.api_version.clone().unwrap_or_else(|| "v1".into())),
            resource: Some(resource),
            subresource,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            label_selector: self.label_selector.as_deref().map(selector::parse_labels).transpose()?,
            field_selector: self.field_selector.as_deref().map(selector::parse_fields).transpose()?,
        });
        Ok(spec)
    }
}

fn spec_from_flags(args: &Args) -> anyhow::Result<SubjectAccessReviewSpec> {
    Request {
        user: args.user.clone(),
        groups: args.groups.clone(),
        uid: args.uid.clone(),
        extra: parse_extra(&args.extra)?,
        verb: args.verb.clone(),
        resource: args.resource.clone(),
        api_group: args.api_group.clone(),
        api_version: Some(args.api_version.clone()),
        namespace: args.namespace.clone(),
        name: args.name.clone(),
        label_selector: args.label_selector.clone(),
        field_selector: args.field_selector.clone(),
        path: args.path.clone(),
    }
    .spec()
}

fn would_deny(audit: &[AuditHit]) -> Vec<String> {
    audit
        .iter()
        .filter(|h| h.would_deny())
        .map(|h| format!("{} ({})", h.policy.policy, h.policy.position))
        .collect()
}

fn authorization_report(v: rampart_policy::AuthorizationVerdict) -> Report {
    Report {
        kind: "SubjectAccessReview",
        decision: v.decision.to_string(),
        tier: v.tier,
        reason: v.reason,
        would_deny: would_deny(&v.audit),
        diagnostic: v.diagnostic,
        message: (!v.evaluation_error.is_empty()).then_some(v.evaluation_error),
    }
}

fn decide(engine: &Engine, args: &Args) -> anyhow::Result<Report> {
    match &args.review {
        None => Ok(authorization_report(engine.authorize(&spec_from_flags(args)?))),
        Some(path) => decide_review(engine, path),
    }
}

/// Decide a SubjectAccessReview or AdmissionReview file.
pub(super) fn decide_review(engine: &Engine, path: &PathBuf) -> anyhow::Result<Report> {
    let value = read_review(path)?;
    let bytes = serde_json::to_vec(&value)?;
    match value.get("kind").and_then(|k| k.as_str()) {
        Some("SubjectAccessReview") => {
            let review = sar::decode(&bytes)?;
            Ok(authorization_report(engine.authorize(&review.spec)))
        }
        Some("AdmissionReview") => {
            let review = admission::decode(&bytes)?;
            let v = engine.admit(&review.request);
            Ok(Report {
                kind: "AdmissionReview",
                decision: if v.response.allowed { "Allowed" } else { "Denied" }.into(),
                tier: v.tier,
                reason: v.diagnostic.to_reason_string(),
                would_deny: would_deny(&v.audit),
                diagnostic: v.diagnostic,
                message: v.response.status.map(|s| s.message).filter(|m| !m.is_empty()),
            })
        }
        other => {
            bail!("{}: kind is {other:?}; expected SubjectAccessReview or AdmissionReview", path.display())
        }
    }
}

/// Decide a request described by fields (a test file's `check:`).
pub(super) fn decide_request(engine: &Engine, request: &Request) -> anyhow::Result<Report> {
    Ok(authorization_report(engine.authorize(&request.spec()?)))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.unified {
        return super::check_unified::run(&args, file);
    }
    args.policies.ensure_any()?;
    let sources = args.policies.sources(Default::default())?;
    let report = sources.load()?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    let r = decide(&report.engine, &args)?;
    match args.output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&r)?),
        Format::Table => {
            let mut t = output::table(&["", ""]);
            t.add_row(vec!["request", r.kind]);
            t.add_row(vec!["decision", &r.decision]);
            t.add_row(vec!["tier", r.tier.as_deref().unwrap_or("-")]);
            t.add_row(vec!["deciding policies", &output::reasons(&r.diagnostic)]);
            // An RBAC or access-policy tier decides without Cedar policies: its reason is the
            // explanation (`RBAC: allowed by ClusterRoleBinding …`).
            if r.diagnostic.reasons.is_empty() && !r.reason.is_empty() {
                t.add_row(vec!["reason", &r.reason]);
            }
            if let Some(m) = &r.message {
                t.add_row(vec!["message", m]);
            }
            if !r.would_deny.is_empty() {
                t.add_row(vec!["audit: would deny", &r.would_deny.join("\n")]);
            }
            crate::outln!("{t}");
        }
    }
    // As `can-i`: 0 allowed, 1 not (denied, or nothing allows it), 2 usage or I/O error.
    Ok(if matches!(r.decision.as_str(), "Allow" | "Allowed") { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
