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
    rampart can-i list secrets -n default --as alice --as-group dev \\
        --rbac rbac.yaml
    rampart can-i get /healthz --as system:anonymous \\
        --as-group system:unauthenticated --rbac rbac/
    rampart can-i delete pods --as bob -n prod --rbac rbac.yaml -p policies/

EXIT STATUS:
    0 yes; 1 no; 2 usage or I/O error")]
pub struct Args {
    /// The verb (get, list, create, delete, impersonate, …).
    #[arg(required_unless_present = "list")]
    pub verb: Option<String>,
    /// Resource as kubectl reads it (`pods`, `po`, `deploy`, `deployments.apps`,
    /// `pods/NAME`, `widgets.example.com`), with a subresource (`pods/log`,
    /// `deployments.apps/scale`), or a non-resource path (`/healthz`).
    #[arg(required_unless_present = "list")]
    pub resource: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Namespace of the request (empty: cluster-scoped).
    #[arg(long, short = 'n', default_value = "")]
    pub namespace: String,
    /// User to ask for.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
    /// Group of the user (repeatable).
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,
    #[command(flatten)]
    pub source: super::cluster::RbacSource,
    /// Unified policies, asked first (as `rampart serve --unified`). A request they leave to
    /// the object is answered "conditional", with what remains of each policy.
    #[arg(long = "unified", value_name = "PATH")]
    pub unified: Vec<PathBuf>,
    /// Cedar policy tiers evaluated before RBAC (as `rampart serve -p`).
    #[arg(long = "policies", short = 'p', value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// List everything the user may do in the namespace: RBAC rules, access-policy rules and
    /// the Cedar permits that can apply to them (with their conditions).
    #[arg(long)]
    pub list: bool,
    /// EKS access entries, for --list and decisions (as `rampart serve --access-entries`).
    #[arg(long, value_name = "FILE")]
    pub access_entries: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, Serialize)]
struct ListedRule {
    source: String,
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ListedPolicy {
    tier: String,
    policy: String,
    position: String,
    effect: String,
    text: String,
}

/// Could this permit's principal scope match the user? (Conditions are shown, not evaluated.)
fn scope_may_match(c: &cedar_policy::PrincipalConstraint, user: &str, groups: &[String]) -> bool {
    use cedar_policy::PrincipalConstraint as P;
    let names = |u: &cedar_policy::EntityUid| {
        let id = u.id().unescaped().to_owned();
        match u.type_name().to_string().as_str() {
            "k8s::Group" => groups.contains(&id),
            _ => id == user,
        }
    };
    match c {
        P::Any | P::Is(_) => true,
        P::Eq(u) | P::In(u) | P::IsIn(_, u) => names(u),
    }
}

fn list(args: &Args) -> anyhow::Result<ExitCode> {
    let user = User { name: &args.user, groups: &args.groups };
    let mut rules: Vec<(String, rampart_rbac::model::PolicyRule)> = Vec::new();
    if !args.source.rbac.is_empty() || args.source.rbac_from_cluster || args.source.bootstrap_roles {
        let authz = super::cluster::rbac_from(&args.source)?.authorizer();
        rules.extend(authz.grants_for(&user, &args.namespace));
    }
    if let Some(path) = &args.access_entries {
        let text = std::fs::read_to_string(path)?;
        let access = rampart_rbac::access_policies::AccessPolicyAuthorizer::from_yaml(&text)?;
        rules.extend(access.rules_for(&user, None, &args.namespace));
    }
    let listed: Vec<ListedRule> = rules
        .into_iter()
        .map(|(source, r)| ListedRule {
            source,
            verbs: r.verbs,
            api_groups: r.api_groups,
            resources: r.resources,
            resource_names: r.resource_names,
            non_resource_urls: r.non_resource_urls,
        })
        .collect();
    let mut policies = Vec::new();
    if !args.policies.is_empty() {
        let engine = policy_args(args).sources(Default::default())?.load()?.engine;
        for tier in engine.tiers() {
            for p in &tier.policies {
                if scope_may_match(&p.policy.principal_constraint(), &args.user, &args.groups) {
                    policies.push(ListedPolicy {
                        tier: tier.name.clone(),
                        policy: p.id.clone(),
                        position: p.position.to_string(),
                        effect: format!("{:?}", p.effect).to_lowercase(),
                        text: p.policy.to_cedar().unwrap_or_else(|| p.policy.to_string()),
                    });
                }
            }
        }
    }
    match args.output {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"rules": listed, "cedar": policies}))?
        ),
        Format::Table => {
            // The core API group is the empty string; show it as `""` so it is visible.
            let join = |v: &[String]| {
                v.iter()
                    .map(|x| if x.is_empty() { "\"\"" } else { x.as_str() })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut t = crate::output::table(&[
                "resources",
                "non-resource URLs",
                "resource names",
                "verbs",
                "api groups",
                "from",
            ]);
            for r in &listed {
                t.add_row(vec![
                    join(&r.resources),
                    join(&r.non_resource_urls),
                    join(&r.resource_names),
                    join(&r.verbs),
                    join(&r.api_groups),
                    r.source.clone(),
                ]);
            }
            crate::outln!("{t}");
            if !policies.is_empty() {
                crate::outln!("\nCedar policies whose scope can apply (conditions decide):");
                for p in &policies {
                    crate::outln!(
                        "\n{} {} ({}, tier {}):\n{}",
                        p.effect,
                        p.policy,
                        p.position,
                        p.tier,
                        p.text.trim()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn policy_args(args: &Args) -> super::PolicyArgs {
    super::PolicyArgs::cedar_only(args.policies.clone())
}

#[derive(Debug, Serialize)]
struct Answer {
    allowed: bool,
    decided_by: &'static str,
    reason: String,
    /// Unified policies left undecided without the object: admission finishes them. With
    /// `allowed`, the apiserver says "yes" on this condition (`kubectl auth can-i` shows "yes").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<String>,
}

impl Answer {
    fn new(allowed: bool, decided_by: &'static str, reason: String) -> Self {
        Answer { allowed, decided_by, reason, conditions: vec![] }
    }
}

/// The groups the apiserver gives a user it impersonates: service accounts get
/// `system:serviceaccounts` and `system:serviceaccounts:<ns>`, everyone `system:authenticated`.
fn implied_groups(user: &str, groups: &mut Vec<String>) {
    let mut add = |g: String| {
        if !groups.contains(&g) {
            groups.push(g);
        }
    };
    if let Some((ns, _)) = user.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
        add("system:serviceaccounts".into());
        add(format!("system:serviceaccounts:{ns}"));
    }
    if user != "system:anonymous" {
        add("system:authenticated".into());
    }
}

pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    implied_groups(&args.user, &mut args.groups);
    if args.list {
        return list(&args);
    }
    let (Some(verb), Some(resource_arg)) = (args.verb.clone(), args.resource.clone()) else {
        anyhow::bail!("give VERB and RESOURCE, or --list");
    };
    let non_resource = resource_arg.starts_with('/');
    crate::resource_arg::verb(&verb).map_err(anyhow::Error::msg)?;
    let target = if non_resource {
        crate::resource_arg::Target {
            resource: resource_arg.clone(),
            group: String::new(),
            subresource: String::new(),
            name: None,
        }
    } else {
        crate::resource_arg::resolve(&resource_arg).map_err(anyhow::Error::msg)?
    };
    if let (Some(a), Some(b)) = (&target.name, &args.name) {
        anyhow::bail!("two names given: {a:?} in {resource_arg:?} and {b:?}; give one");
    }
    args.name = args.name.clone().or(target.name.clone());
    let (resource, group, subresource) = (target.resource, target.group, target.subresource);
    let name = args.name.clone().unwrap_or_default();

    let mut answer = None;
    let mut conditions = Vec::new();
    if !args.unified.is_empty() && !non_resource {
        let tier = rampart_unified::live::LiveUnified::load(args.unified.clone(), false)
            .map_err(|e| anyhow::anyhow!("unified policies: {e}"))?
            .tier();
        if let Some(kind) = rampart_unified::schema::resource_kind(&group, &resource, &subresource) {
            let attributes = rampart_unified::request::Attributes {
                user: rampart_policy::entities::principal::UserInfoRef {
                    username: &args.user,
                    uid: "",
                    groups: &args.groups,
                    extra: None,
                },
                verb: &verb,
                kind,
                namespace: &args.namespace,
                name: &name,
            };
            use rampart_unified::Outcome;
            match tier.explain(&attributes).map_err(|e| anyhow::anyhow!("unified policies: {e}"))? {
                Outcome::Allow { policies } => {
                    answer =
                        Some(Answer::new(true, "unified", format!("allowed by {}", policies.join(", "))));
                }
                Outcome::Deny { policies } => {
                    answer =
                        Some(Answer::new(false, "unified", format!("denied by {}", policies.join(", "))));
                }
                Outcome::Conditional { residuals, may_allow: true, .. } => {
                    let mut a =
                        Answer::new(true, "unified", "conditional on the object: admission decides".into());
                    a.conditions = residuals;
                    answer = Some(a);
                }
                // Only forbids remain: the later tiers answer, and the forbids are checked at
                // admission.
                Outcome::Conditional { residuals, may_allow: false, .. } => conditions = residuals,
                Outcome::NoOpinion => {}
            }
        }
    }
    if answer.is_none() && !args.policies.is_empty() {
        let sources = policy_args(&args).sources(Default::default())?;
        let engine = sources.load()?.engine;
        let mut spec = SubjectAccessReviewSpec {
            user: Some(args.user.clone()),
            groups: Some(args.groups.clone()),
            ..Default::default()
        };
        if non_resource {
            spec.non_resource_attributes =
                Some(NonResourceAttributes { path: Some(resource_arg.clone()), verb: Some(verb.clone()) });
        } else {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(verb.clone()),
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
            answer = Some(Answer::new(v.decision == Decision::Allow, "cedar", v.reason));
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => {
            let authz = super::cluster::rbac_from(&args.source)?.authorizer();
            let attrs = Attributes {
                verb: &verb,
                resource_request: !non_resource,
                api_group: &group,
                resource: &resource,
                subresource: &subresource,
                name: &name,
                namespace: &args.namespace,
                path: if non_resource { &resource_arg } else { "" },
            };
            let user = User { name: &args.user, groups: &args.groups };
            let via_access = match &args.access_entries {
                Some(path) => {
                    let text = std::fs::read_to_string(path)?;
                    let access = rampart_rbac::access_policies::AccessPolicyAuthorizer::from_yaml(&text)?;
                    Some(access.authorize(&user, None, &attrs)).filter(|d| d.allowed())
                }
                None => None,
            };
            match via_access {
                Some(d) => Answer::new(true, "eks-access-policies", d.reason().to_owned()),
                None => {
                    let d = authz.authorize(&user, &attrs);
                    Answer::new(d.allowed(), "rbac", d.reason().to_owned())
                }
            }
        }
    };
    let mut answer = answer;
    if answer.allowed && answer.conditions.is_empty() {
        answer.conditions = conditions;
    }
    if !answer.allowed && answer.reason.is_empty() {
        // A "no" says why: nothing granted it.
        let what = if non_resource {
            format!("{verb} {resource_arg}")
        } else {
            let scope = if args.namespace.is_empty() {
                "cluster-wide".to_owned()
            } else {
                format!("in namespace {}", args.namespace)
            };
            let sub = if subresource.is_empty() { String::new() } else { format!("/{subresource}") };
            let g = if group.is_empty() { String::new() } else { format!(".{group}") };
            format!("{verb} {resource}{g}{sub} {scope}")
        };
        answer.reason = format!(
            "no Cedar policy decided, and no RBAC rule{} grants {what} to {} (groups {})",
            if args.access_entries.is_some() { " or EKS access policy" } else { "" },
            args.user,
            args.groups.join(", ")
        );
    }
    match args.output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&answer)?),
        Format::Table => {
            let word = match (answer.allowed, answer.conditions.is_empty()) {
                (true, true) => "yes",
                (true, false) => "conditional",
                (false, _) => "no",
            };
            crate::outln!("{word}");
            if !answer.reason.is_empty() {
                crate::outln!("  {} ({})", answer.reason, answer.decided_by);
            }
            for condition in &answer.conditions {
                crate::outln!("  finished at admission: {}", condition.replace('\n', " "));
            }
        }
    }
    Ok(if answer.allowed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
