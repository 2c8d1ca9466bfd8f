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
use crate::{PolicyLoadError, schema};

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
                world = world.with_bootstrap();
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
        let messages = schema::validate(schema, &set);
        if messages.is_empty() {
            return;
        }
        let message = messages.join("; ");
        if doc.enforce_validation || self.validation == Validation::Enforce {
            errors.push(PolicyLoadError::Validation { location: doc.location.clone(), message });
        } else {
            warnings.push(format!("{}: schema validation: {message}", doc.location));
        }
    }
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
