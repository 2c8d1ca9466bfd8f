//! `rampart can-i`: would this user be allowed, by Cedar policies layered over RBAC?
//!
//! The same chain as the apiserver wired by `rampart kube-config`: the Cedar tiers first (an
//! Allow or Deny decides), then RBAC for whatever Cedar has no opinion on.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_rbac::{Attributes, User};
use rampart_types::Decision;
use rampart_types::sar::{NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec};
use serde::Serialize;

use crate::output::Format;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart can-i list secrets -n default --as alice --as-group dev --rbac rbac.yaml
    rampart can-i get /healthz --as system:anonymous --as-group system:unauthenticated --rbac rbac/
    rampart can-i delete pods --as bob -n prod --rbac rbac.yaml -p policies/

EXIT STATUS:
    0 yes; 1 no; 2 usage or I/O error")]
pub struct Args {
    /// The verb (get, list, create, delete, impersonate, …).
    pub verb: String,
    /// Resource (`pods`, `pods/log`, `deployments.apps`) or a non-resource path (`/healthz`).
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    #[arg(long, short = 'n', default_value = "")]
    pub namespace: String,
    /// User to ask for.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
    /// Group of the user (repeatable).
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// RBAC manifests (files or directories of YAML: roles, bindings; `kubectl get … -o yaml` output).
    #[arg(long = "rbac", value_name = "PATH")]
    pub rbac: Vec<PathBuf>,
    /// Read Roles, ClusterRoles and bindings from the cluster instead of --rbac files.
    #[arg(long, conflicts_with = "rbac")]
    pub rbac_from_cluster: bool,
    /// Kubeconfig for --rbac-from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Cedar policy tiers evaluated before RBAC (as `rampart serve -p`).
    #[arg(long = "policies", short = 'p', value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, Serialize)]
struct Answer {
    allowed: bool,
    decided_by: &'static str,
    reason: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let non_resource = args.resource.starts_with('/');
    let (resource, group) = match args.resource.split_once('.') {
        Some((r, g)) if !non_resource => (r.to_owned(), g.to_owned()),
        _ => (args.resource.clone(), String::new()),
    };
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) if !non_resource => (r.to_owned(), s.to_owned()),
        _ => (resource, String::new()),
    };
    let name = args.name.clone().unwrap_or_default();

    let mut answer = None;
    if !args.policies.is_empty() {
        let sources = super::PolicyArgs {
            tiers: args.policies.clone(),
            validation: super::ValidationArg::Off,
            schema: None,
            rbac: vec![],
            rbac_first: false,
            access_entries: None,
        }
        .sources(Default::default())?;
        let engine = sources.load()?.engine;
        let mut spec = SubjectAccessReviewSpec {
            user: Some(args.user.clone()),
            groups: Some(args.groups.clone()),
            ..Default::default()
        };
        if non_resource {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(args.resource.clone()),
                verb: Some(args.verb.clone()),
            });
        } else {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(args.verb.clone()),
                group: Some(group.clone()),
                version: Some("*".into()),
                resource: Some(resource.clone()),
                subresource: (!subresource.is_empty()).then(|| subresource.clone()),
                namespace: (!args.namespace.is_empty()).then(|| args.namespace.clone()),
                name: args.name.clone(),
                ..Default::default()
            });
        }
        let v = engine.authorize(&spec);
        if v.decision != Decision::NoOpinion {
            answer = Some(Answer {
                allowed: v.decision == Decision::Allow,
                decided_by: "cedar",
                reason: v.reason,
            });
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => {
            let authz =
                super::cluster::rbac_from(&args.rbac, args.rbac_from_cluster, args.kubeconfig.as_deref())?
                    .authorizer();
            let attrs = Attributes {
                verb: &args.verb,
                resource_request: !non_resource,
                api_group: &group,
                resource: &resource,
                subresource: &subresource,
                name: &name,
                namespace: &args.namespace,
                path: if non_resource { &args.resource } else { "" },
            };
            let d = authz.authorize(&User { name: &args.user, groups: &args.groups }, &attrs);
            Answer { allowed: d.allowed(), decided_by: "rbac", reason: d.reason().to_owned() }
        }
    };
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Format::Table => {
            println!("{}", if answer.allowed { "yes" } else { "no" });
            if !answer.reason.is_empty() {
                println!("  {} ({})", answer.reason, answer.decided_by);
            }
        }
    }
    Ok(if answer.allowed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
