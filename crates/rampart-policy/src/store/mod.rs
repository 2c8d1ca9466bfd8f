//! Policy stores: directories of `.cedar` files and `Policy` YAML, loaded into an engine,
//! reloaded atomically when they change.
//!
//! A load is all-or-nothing: one bad file fails the load with its `file:line:col`, and a
//! running server keeps serving the last good engine. (Upstream skipped bad files, silently
//! dropping the forbids they held; for a security control that is the wrong failure mode.)

pub mod crd;
pub mod directory;
pub mod live;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cedar_policy::{PolicySet, Schema};

use crate::document::{DocumentKind, LoadedPolicy, ParseFailure, parse_document};
use crate::engine::{AllowOnly, Engine, EngineOptions, RbacTier};
use crate::{EnforcedBy, PolicyLoadError, schema};

pub use live::LiveEngine;

/// How strictly policies are checked against the schema at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Don't validate (policies for CRD kinds the schema does not know).
    Off,
    /// Validate and report failures as warnings. `Policy` objects with
    /// `spec.validation.enforced: true` are still rejected when they fail.
    #[default]
    Warn,
    /// Every policy must validate.
    Enforce,
}

/// Where the tiers come from and how to check them.
#[derive(Debug, Clone)]
pub struct PolicySources {
    /// One tier per entry, highest priority first. Each is a directory or a single file.
    pub tiers: Vec<PathBuf>,
    pub schema: Option<Arc<Schema>>,
    pub validation: Validation,
    pub options: EngineOptions,
    /// RBAC manifests (files or directories) forming one RBAC tier; none when empty.
    pub rbac: Vec<PathBuf>,
    /// Put the RBAC tier before the Cedar tiers instead of after them.
    pub rbac_first: bool,
    /// EKS access entries (with associated access policies), an allow-only tier placed with
    /// the RBAC tier.
    pub access_entries: Option<PathBuf>,
    /// Add kube-apiserver's default roles and bindings to the RBAC tier.
    pub rbac_bootstrap: bool,
    /// Of this Kubernetes release (`1.36`; see `rampart_rbac::bootstrap::VERSIONS`).
    pub kubernetes_version: String,
    /// Tiers of `Policy` objects fed by a watcher, each inserted before the path tier of the
    /// same index (an index equal to `tiers.len()` puts it last).
    pub object_tiers: Vec<(usize, ObjectTier)>,
    /// Let a reload take effect even when it empties a file or a tier (see
    /// [`emptied_sources`]); off by default, because an emptied file silently drops forbids.
    pub allow_policy_removal: bool,
}

/// A successful load: the engine and any validation warnings.
#[derive(Debug)]
pub struct LoadReport {
    pub engine: Engine,
    pub warnings: Vec<String>,
    /// How many policies each file of each tier holds.
    pub counts: PolicyCounts,
}

/// Tier path → file → number of policies it holds (files with none included).
pub type PolicyCounts = BTreeMap<PathBuf, BTreeMap<PathBuf, usize>>;

/// What a reload from `before` to `after` would silently lose: files that still exist but
/// hold no policy any more (`: > file`, a half-written file that parses as nothing, a
/// ConfigMap glitch), and tiers left with none. Deleting a file on purpose is not listed,
/// unless it empties its tier.
pub fn emptied_sources(before: &PolicyCounts, after: &PolicyCounts) -> Vec<String> {
    let mut lost = Vec::new();
    for (tier, files) in before {
        let now = after.get(tier);
        let had: usize = files.values().sum();
        let has: usize = now.map(|f| f.values().sum()).unwrap_or(0);
        if had > 0 && has == 0 {
            lost.push(format!("tier {} ({had} policies → none)", tier.display()));
            continue;
        }
        for (file, &n) in files {
            if n > 0 && now.and_then(|f| f.get(file)) == Some(&0) {
                lost.push(format!("{} ({n} policies → none)", file.display()));
            }
        }
    }
    lost
}

/// A failed load: every error found, each naming its file.
#[derive(Debug, thiserror::Error)]
#[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadFailure {
    pub errors: Vec<PolicyLoadError>,
}

/// A tier of `Policy` objects held in memory and replaced as a whole by its feeder (the
/// cluster watcher), so a reload never sees it half-updated. `None` until the first full list.
#[derive(Debug, Clone)]
pub struct ObjectTier {
    /// The tier's name in decisions and logs, e.g. `cluster` or `cluster:tier=org`.
    pub name: String,
    documents: Arc<std::sync::RwLock<Option<Vec<ParsedDocument>>>>,
}

impl ObjectTier {
    pub fn new(name: impl Into<String>) -> Self {
        ObjectTier { name: name.into(), documents: Arc::default() }
    }
    /// Replace the tier's documents (each already parsed and validated).
    pub fn set(&self, documents: Vec<ParsedDocument>) {
        *self.documents.write().unwrap_or_else(|e| e.into_inner()) = Some(documents);
    }
    /// The documents, or `None` before the first [`ObjectTier::set`].
    pub fn snapshot(&self) -> Option<Vec<ParsedDocument>> {
        self.documents.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Policies of one source document plus what validation must do with them.
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    /// File (and object) the policies came from, for messages.
    pub location: String,
    /// What the policies' own `line:col` positions count from: the file for `.cedar` files,
    /// `… spec.content` for `Policy` objects.
    pub content_location: String,
    pub policies: Vec<LoadedPolicy>,
    /// `spec.validation.enforced` of a `Policy` object.
    pub enforce_validation: bool,
}

impl PolicySources {
    /// Sources with the embedded schema and warn-level validation.
    pub fn new(tiers: Vec<PathBuf>, options: EngineOptions) -> Self {
        let schema = schema::k8s_schema().ok().map(Arc::new);
        PolicySources {
            tiers,
            schema,
            validation: Validation::Warn,
            options,
            rbac: vec![],
            rbac_first: false,
            access_entries: None,
            rbac_bootstrap: false,
            kubernetes_version: rampart_rbac::bootstrap::DEFAULT_VERSION.into(),
            object_tiers: vec![],
            allow_policy_removal: false,
        }
    }

    /// Read, parse and validate every tier, then build the engine.
    pub fn load(&self) -> Result<LoadReport, LoadFailure> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut tiers = Vec::new();
        let mut counts = PolicyCounts::new();
        for (index, path) in self.tiers.iter().map(Some).chain([None]).enumerate() {
            for (_, tier) in self.object_tiers.iter().filter(|(at, _)| *at == index) {
                match tier.snapshot() {
                    Some(docs) => {
                        tiers.push((tier.name.clone(), docs.into_iter().flat_map(|d| d.policies).collect()))
                    }
                    None => errors.push(PolicyLoadError::Parse {
                        location: tier.name.clone(),
                        message: "the Policy objects have not been listed yet".into(),
                    }),
                }
            }
            let Some(path) = path else { break };
            let documents = match directory::read_tier(path) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let mut policies = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut tier_counts = BTreeMap::new();
            for (file, docs) in documents {
                let count = docs.iter().flatten().map(|d| d.policies.len()).sum::<usize>();
                tier_counts.insert(file, count);
                for doc in docs {
                    match doc {
                        Ok(parsed) => {
                            self.check_schema(&parsed, &mut errors, &mut warnings);
                            for p in parsed.policies {
                                if !seen.insert(p.id.clone()) {
                                    errors.push(PolicyLoadError::DuplicateId {
                                        location: parsed.location.clone(),
                                        id: p.id,
                                    });
                                    continue;
                                }
                                policies.push(p);
                            }
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
            counts.insert(path.clone(), tier_counts);
            tiers.push((path.display().to_string(), policies));
        }
        if !errors.is_empty() {
            return Err(LoadFailure { errors });
        }
        let mut engine = Engine::new(tiers, self.options.clone()).map_err(|e| LoadFailure {
            errors: vec![PolicyLoadError::Parse { location: "engine".into(), message: e.to_string() }],
        })?;
        if let Some(path) = &self.access_entries {
            let fail = |message: String| LoadFailure {
                errors: vec![PolicyLoadError::Parse { location: path.display().to_string(), message }],
            };
            let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
            let access = rampart_rbac::access_policies::AccessPolicyAuthorizer::from_yaml(&text)
                .map_err(|e| fail(e.to_string()))?;
            let tier = RbacTier {
                name: "eks-access-policies".into(),
                authorizer: AllowOnly::AccessPolicies(access),
            };
            engine = engine.with_rbac_tier(tier, self.rbac_first);
        }
        if !self.rbac.is_empty() || self.rbac_bootstrap {
            let mut world =
                rampart_rbac::manifest::World::from_paths(&self.rbac).map_err(|e| LoadFailure {
                    errors: vec![PolicyLoadError::Parse { location: e.location, message: e.message }],
                })?;
            if self.rbac_bootstrap {
                world = world.with_bootstrap_version(&self.kubernetes_version).map_err(|e| LoadFailure {
                    errors: vec![PolicyLoadError::Parse {
                        location: "--kubernetes-version".into(),
                        message: e.to_string(),
                    }],
                })?;
            }
            let tier = RbacTier { name: "rbac".into(), authorizer: AllowOnly::Rbac(world.authorizer()) };
            engine = engine.with_rbac_tier(tier, self.rbac_first);
        }
        Ok(LoadReport { engine, warnings, counts })
    }

    /// Schema-check one document as a load would: `Ok` with warnings, or the errors that
    /// would fail the load (for objects checked one at a time: the watcher, the webhook).
    pub fn check_document(&self, doc: &ParsedDocument) -> Result<Vec<String>, Vec<PolicyLoadError>> {
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        self.check_schema(doc, &mut errors, &mut warnings);
        if errors.is_empty() { Ok(warnings) } else { Err(errors) }
    }

    fn check_schema(
        &self,
        doc: &ParsedDocument,
        errors: &mut Vec<PolicyLoadError>,
        warnings: &mut Vec<String>,
    ) {
        let Some(schema) = &self.schema else { return };
        if self.validation == Validation::Off && !doc.enforce_validation {
            return;
        }
        let mut set = PolicySet::new();
        for p in &doc.policies {
            // Ids are unique within a document, so `add` cannot fail here.
            let _ = set.add(p.policy.clone());
        }
        // The object's own setting is named first: it holds even under `--validation warn`.
        let enforced_by = if doc.enforce_validation {
            Some(EnforcedBy::PolicyObject)
        } else if self.validation == Validation::Enforce {
            Some(EnforcedBy::Setting)
        } else {
            None
        };
        for issue in schema::validate(schema, &set) {
            let policy = doc.policies.iter().find(|p| p.id == issue.policy_id);
            let (line, column) = match (policy, issue.offset) {
                (Some(p), Some(offset)) => position_in_document(p, offset),
                (Some(p), None) => (p.position.line, p.position.column),
                (None, _) => (1, 1),
            };
            let location = format!("{}:{line}:{column}", doc.content_location);
            let policy = policy.map_or(issue.policy_id.clone(), policy_name);
            match enforced_by {
                Some(enforced_by) => errors.push(PolicyLoadError::Validation {
                    location,
                    policy,
                    enforced_by,
                    message: issue.message,
                }),
                None => warnings
                    .push(format!("{location}: policy {policy}: schema validation: {}", issue.message)),
            }
        }
    }
}

/// How a policy is named to people: its `@id` when it has one, else its generated id.
fn policy_name(policy: &LoadedPolicy) -> String {
    match &policy.label {
        Some(label) => format!("{label:?}"),
        None => policy.id.clone(),
    }
}

/// `line:col` in the document of byte `offset` (counted in the document's text), found from
/// the policy's own position and text: a parsed policy's `to_cedar()` is its exact slice of
/// the document, so the document itself need not be kept.
fn position_in_document(policy: &LoadedPolicy, offset: usize) -> (usize, usize) {
    let start = &policy.position;
    let Some(text) = policy.policy.to_cedar() else { return (start.line, start.column) };
    let (line, column) = crate::source::line_column(&text, offset.saturating_sub(start.offset));
    if line == 1 { (start.line, start.column + column - 1) } else { (start.line + line - 1, column) }
}

/// Parse one document, turning a parse failure into a located load error.
fn parse_located(
    kind: &DocumentKind,
    text: &str,
    location: &str,
) -> Result<Vec<LoadedPolicy>, PolicyLoadError> {
    parse_document(kind, text).map_err(|ParseFailure { line, column, message }| PolicyLoadError::Parse {
        location: format!("{location}:{line}:{column}"),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNGUARDED: &str = "// a comment\npermit(principal, action, resource is k8s::Resource)\n  when { resource.namespace == \"y\" && resource.name == \"x\" };\n";
    const OBJECT: &str = "apiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata:\n  name: objpol\nspec:\n  validation:\n    enforced: true\n  content: |\n    @id(\"named\")\n    permit(principal, action, resource is k8s::Resource) when { resource.name == \"x\" };\n";

    fn load(files: &[(&str, &str)], validation: Validation) -> Result<LoadReport, LoadFailure> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut sources = PolicySources::new(vec![dir.path().to_path_buf()], EngineOptions::default());
        sources.validation = validation;
        sources.load()
    }

    #[test]
    fn warnings_name_file_line_and_column_once_each_in_source_order() {
        let report = load(&[("a.cedar", UNGUARDED)], Validation::Warn).unwrap();
        let w = &report.warnings;
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("a.cedar:3:10: policy a.cedar.policy0: schema validation: unable to guarantee safety of access to optional attribute `namespace`"), "{w:?}");
        assert!(w[1].contains("a.cedar:3:39: policy a.cedar.policy0:"), "{w:?}");
        // Cedar's own order follows hash maps; ours must not.
        let without_dir = |w: &[String]| {
            w.iter().map(|w| w.split_once("a.cedar").unwrap().1.to_owned()).collect::<Vec<_>>()
        };
        for _ in 0..10 {
            let again = load(&[("a.cedar", UNGUARDED)], Validation::Warn).unwrap().warnings;
            assert_eq!(without_dir(&again), without_dir(w));
        }
    }

    #[test]
    fn errors_say_what_enforced_them() {
        let failure = load(&[("a.cedar", UNGUARDED)], Validation::Enforce).unwrap_err();
        let text = failure.to_string();
        assert_eq!(failure.errors.len(), 2, "{text}");
        assert!(text.contains("a.cedar:3:10: policy a.cedar.policy0 fails schema validation (enforced by --validation enforce)"), "{text}");
        // A Policy object with validation.enforced fails even under warn, and says so; its
        // position counts within spec.content and its @id names it.
        let failure = load(&[("p.yaml", OBJECT)], Validation::Warn).unwrap_err();
        let text = failure.to_string();
        assert!(text.contains("Policy \"objpol\" spec.content:2:"), "{text}");
        assert!(text.contains("policy \"named\" fails schema validation (enforced by its Policy object's spec.validation.enforced)"), "{text}");
        assert!(load(&[("a.cedar", UNGUARDED)], Validation::Off).unwrap().warnings.is_empty());
    }
}
