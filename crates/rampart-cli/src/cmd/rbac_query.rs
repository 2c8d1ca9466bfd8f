//! `rampart who-can` and `rampart lookup`: questions about RBAC (and Cedar over it).

use std::path::PathBuf;
use std::process::ExitCode;

use cedar_policy_scope::literal_principals;
use rampart_policy::Engine;
use rampart_rbac::Attributes;
use rampart_types::Decision;
use rampart_types::sar::{NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec};
use serde::Serialize;

use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart who-can get secrets -n default --rbac rbac.yaml

    And which Cedar forbid removes a grant:
        rampart who-can create pods/exec -n prod --rbac rbac/ -p policies/")]
pub struct WhoCanArgs {
    /// The verb (get, list, create, delete, impersonate, …).
    pub verb: String,
    /// Resource (`pods`, `pods/exec`, `deployments.apps`) or a non-resource path (`/metrics`).
    pub resource: String,
    /// Object name (optional).
    pub name: Option<String>,
    /// Namespace of the request (empty: cluster-scoped).
    #[arg(long, short = 'n', default_value = "")]
    pub namespace: String,
    #[command(flatten)]
    pub source: super::cluster::RbacSource,
    /// Cedar policy tiers: show which forbid removes an RBAC grant, and who a Cedar permit adds.
    #[arg(long = "policies", short = 'p', value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, clap::Args)]
pub struct LookupArgs {
    /// Only subjects whose label (`User alice`, `Group devs`, `ServiceAccount ns/sa`) contains this.
    pub subject: Option<String>,
    #[command(flatten)]
    pub source: super::cluster::RbacSource,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, Serialize)]
struct Row {
    subject: String,
    granted_by: String,
    role: String,
    scope: String,
    /// Empty, or the Cedar verdict on this subject (a forbid that removes the grant).
    cedar: String,
}

struct Request {
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    name: String,
    namespace: String,
    path: String,
}

impl Request {
    /// The request `VERB RESOURCE`, with RESOURCE read as kubectl reads it.
    fn parse(verb: &str, resource: &str, name: Option<&str>, namespace: &str) -> anyhow::Result<Self> {
        crate::resource_arg::verb(verb).map_err(anyhow::Error::msg)?;
        if resource.starts_with('/') {
            return Ok(Request {
                verb: verb.to_owned(),
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                name: String::new(),
                namespace: namespace.to_owned(),
                path: resource.to_owned(),
            });
        }
        let target = crate::resource_arg::resolve(resource).map_err(anyhow::Error::msg)?;
        Ok(Request {
            verb: verb.to_owned(),
            group: target.group,
            resource: target.resource,
            subresource: target.subresource,
            name: name.map(str::to_owned).or(target.name).unwrap_or_default(),
            namespace: namespace.to_owned(),
            path: String::new(),
        })
    }

    fn attrs(&self) -> Attributes<'_> {
        Attributes {
            verb: &self.verb,
            resource_request: self.path.is_empty(),
            api_group: &self.group,
            resource: &self.resource,
            subresource: &self.subresource,
            name: &self.name,
            namespace: &self.namespace,
            path: &self.path,
        }
    }

    /// A SubjectAccessReview for a subject (`kind`, `name` as in the grant).
    fn sar(&self, kind: &str, name: &str) -> SubjectAccessReviewSpec {
        let (user, mut groups) = match kind {
            "Group" => (String::new(), vec![name.to_owned()]),
            "ServiceAccount" => {
                let (ns, sa) = name.split_once('/').unwrap_or(("", name));
                (
                    format!("system:serviceaccount:{ns}:{sa}"),
                    vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}")],
                )
            }
            _ => (name.to_owned(), vec![]),
        };
        groups.push("system:authenticated".into());
        let non = |s: &String| (!s.is_empty()).then(|| s.clone());
        let mut spec =
            SubjectAccessReviewSpec { user: Some(user), groups: Some(groups), ..Default::default() };
        if self.path.is_empty() {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(self.verb.clone()),
                group: Some(self.group.clone()),
                version: Some("*".into()),
                resource: Some(self.resource.clone()),
                subresource: non(&self.subresource),
                name: non(&self.name),
                namespace: non(&self.namespace),
                ..Default::default()
            });
        } else {
            spec.non_resource_attributes =
                Some(NonResourceAttributes { path: Some(self.path.clone()), verb: Some(self.verb.clone()) });
        }
        spec
    }
}

fn cedar_verdict(engine: &Engine, spec: &SubjectAccessReviewSpec) -> (Decision, String) {
    let v = engine.authorize(spec);
    let policies = v.diagnostic.reasons.iter().map(|r| r.describe()).collect::<Vec<_>>();
    (v.decision, policies.join(", "))
}

pub fn who_can(args: WhoCanArgs) -> anyhow::Result<ExitCode> {
    let authz = super::cluster::rbac_from(&args.source)?.authorizer();
    let req = Request::parse(&args.verb, &args.resource, args.name.as_deref(), &args.namespace)?;
    let engine = if args.policies.is_empty() {
        None
    } else {
        let sources = super::PolicyArgs::cedar_only(args.policies.clone()).sources(Default::default())?;
        Some(sources.load()?.engine)
    };
    let mut rows: Vec<Row> = authz
        .who_can(&req.attrs())
        .into_iter()
        .map(|g| {
            let cedar = match &engine {
                Some(e) => match cedar_verdict(e, &req.sar(&g.subject_kind, &g.subject_name)) {
                    (Decision::Deny, by) => format!("removed by forbid {by}"),
                    _ => "kept".into(),
                },
                None => String::new(),
            };
            let role = match g.rule {
                Some(i) => format!("{} rule {i}", g.role),
                None => g.role,
            };
            Row { subject: g.subject, granted_by: g.binding, role, scope: g.scope, cedar }
        })
        .collect();
    if let Some(engine) = &engine {
        // Subjects a Cedar permit names literally (principal == / in) and that it allows.
        for (kind, name) in literal_principals(engine) {
            if rows.iter().any(|r| r.subject == format!("{kind} {name}")) {
                continue;
            }
            if let (Decision::Allow, by) = cedar_verdict(engine, &req.sar(&kind, &name)) {
                rows.push(Row {
                    subject: format!("{kind} {name}"),
                    granted_by: by,
                    role: "Cedar permit".into(),
                    scope: String::new(),
                    cedar: "granted".into(),
                });
            }
        }
    }
    match args.output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            let mut t = output::table(&["subject", "granted by", "role", "scope", "cedar"]);
            for r in &rows {
                t.add_row(vec![&r.subject, &r.granted_by, &r.role, &r.scope, &r.cedar]);
            }
            crate::outln!("{t}");
            crate::outln!(
                "{} subjects can {} {}",
                rows.iter().filter(|r| !r.cedar.starts_with("removed")).count(),
                args.verb,
                args.resource
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lookup(args: LookupArgs) -> anyhow::Result<ExitCode> {
    let authz = super::cluster::rbac_from(&args.source)?.authorizer();
    let grants = authz.lookup(args.subject.as_deref());
    let risks = authz.risks(args.subject.as_deref());
    match args.output {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"grants": grants, "risks": risks}))?
        ),
        Format::Table => {
            let mut t = output::table(&["subject", "role", "binding", "scope"]);
            for g in &grants {
                t.add_row(vec![&g.subject, &g.role, &g.binding, &g.scope]);
            }
            crate::outln!("{t}");
            if !risks.is_empty() {
                let mut r = output::table(&["subject", "risk", "via"]);
                for risk in &risks {
                    r.add_row(vec![risk.subject.as_str(), risk.flag, risk.via.as_str()]);
                }
                crate::outln!("\nRisks:\n{r}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

mod cedar_policy_scope {
    //! Literal principals named in Cedar permit scopes.
    use cedar_policy::PrincipalConstraint;
    use rampart_policy::Engine;

    /// `(kind, name)` for every `principal == k8s::User::"x"` / `principal in k8s::Group::"g"`
    /// of a permit (kinds as RBAC names them).
    pub fn literal_principals(engine: &Engine) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in engine.tiers().iter().flat_map(|t| &t.policies) {
            if p.effect != cedar_policy::Effect::Permit {
                continue;
            }
            let uid = match p.policy.principal_constraint() {
                PrincipalConstraint::Eq(u) | PrincipalConstraint::In(u) | PrincipalConstraint::IsIn(_, u) => {
                    u
                }
                _ => continue,
            };
            let kind = match uid.type_name().to_string().as_str() {
                "k8s::Group" => "Group",
                "k8s::User" => "User",
                _ => continue,
            };
            let entry = (kind.to_owned(), uid.id().unescaped().to_owned());
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        out
    }
}
