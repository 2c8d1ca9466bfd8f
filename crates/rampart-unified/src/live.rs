//! The unified tier while serving: loaded from `.cedar` files (files or directories, one
//! tier), swapped atomically on change, with the engine's reload rules: a bad file keeps the
//! last good tier, and a reload that would leave a file (or the tier) that had policies with
//! none is refused unless removal is allowed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
pub use rampart_policy::store::live::WatchGuard;
use rampart_policy::store::live::watch_paths;
use rampart_policy::store::{PolicyCounts, emptied_sources};

use crate::{UnifiedError, UnifiedTier};

/// The serving tier and where it comes from.
#[derive(Debug)]
pub struct LiveUnified {
    current: ArcSwap<UnifiedTier>,
    paths: Vec<PathBuf>,
    allow_removal: bool,
    generation: AtomicU64,
    counts: Mutex<PolicyCounts>,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    Reloaded {
        policies: usize,
    },
    /// The files are bad; the previous tier keeps serving.
    Failed(UnifiedError),
    /// The files would empty these files or the tier; the previous tier keeps serving.
    Refused {
        emptied: Vec<String>,
    },
}

/// The `.cedar` files of the paths, in order (a directory's sorted by name).
fn cedar_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, UnifiedError> {
    let mut files = Vec::new();
    for path in paths {
        let found = rampart_policy::store::directory::tier_files(path).map_err(|e| UnifiedError::Policy {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        files.extend(found.into_iter().filter(|f| f.extension().is_some_and(|e| e == "cedar")));
    }
    Ok(files)
}

/// Read and load the tier; also how many policies each file holds.
fn read(paths: &[PathBuf]) -> Result<(UnifiedTier, PolicyCounts), UnifiedError> {
    let mut texts = Vec::new();
    for file in cedar_files(paths)? {
        let text = std::fs::read_to_string(&file).map_err(|e| UnifiedError::Policy {
            location: file.display().to_string(),
            message: e.to_string(),
        })?;
        texts.push((file.display().to_string(), text));
    }
    let tier = UnifiedTier::load_files(&texts)?;
    let mut counts = PolicyCounts::new();
    let per_file = counts.entry(PathBuf::from("unified")).or_default();
    for (file, _) in &texts {
        per_file.insert(PathBuf::from(file), tier.policy_count_of(file));
    }
    Ok((tier, counts))
}

impl LiveUnified {
    /// Load once; every error is fatal here (nothing served yet).
    pub fn load(paths: Vec<PathBuf>, allow_removal: bool) -> Result<Arc<Self>, UnifiedError> {
        let (tier, counts) = read(&paths)?;
        Ok(Arc::new(LiveUnified {
            current: ArcSwap::from_pointee(tier),
            paths,
            allow_removal,
            generation: AtomicU64::new(0),
            counts: Mutex::new(counts),
        }))
    }

    /// The tier to use for one request.
    pub fn tier(&self) -> Arc<UnifiedTier> {
        self.current.load_full()
    }

    /// Bumped by every successful reload (for decision caches).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-read the files.
    pub fn reload(&self) -> Reload {
        let (tier, counts) = match read(&self.paths) {
            Ok(loaded) => loaded,
            Err(e) => return Reload::Failed(e),
        };
        let mut last = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let emptied = emptied_sources(&last, &counts);
        // Fail closed: an emptied file is most often a truncated write, and taking it at its
        // word would silently drop its forbids.
        if !emptied.is_empty() && !self.allow_removal {
            return Reload::Refused { emptied };
        }
        *last = counts;
        let policies = tier.policy_count();
        self.current.store(Arc::new(tier));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Reload::Reloaded { policies }
    }

    /// Watch the paths and reload on change, calling `observe` after every attempt.
    pub fn watch(
        self: &Arc<Self>,
        observe: impl Fn(&Reload) + Send + 'static,
    ) -> Result<WatchGuard, notify::Error> {
        let live = Arc::clone(self);
        watch_paths(&self.paths, "unified-reload", move || observe(&live.reload()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORBID: &str =
        "forbid (principal, action == k8s::unified::Action::\"delete\", resource is core::configmaps);";

    #[test]
    fn a_bad_or_emptied_file_keeps_the_last_good_tier() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("u.cedar");
        std::fs::write(&file, FORBID).unwrap();
        let live = LiveUnified::load(vec![dir.path().to_path_buf()], false).unwrap();
        assert_eq!(live.tier().policy_count(), 1);

        std::fs::write(&file, "forbid (principal, action, resource) when { nonsense };").unwrap();
        assert!(matches!(live.reload(), Reload::Failed(_)));
        std::fs::write(&file, "").unwrap();
        assert!(matches!(live.reload(), Reload::Refused { .. }));
        assert_eq!(live.tier().policy_count(), 1);
        assert_eq!(live.generation(), 0);

        std::fs::write(&file, format!("{FORBID}\n{FORBID}")).unwrap();
        assert!(matches!(live.reload(), Reload::Reloaded { policies: 2 }));
        assert_eq!(live.generation(), 1);
    }

    #[test]
    fn removal_can_be_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("u.cedar");
        std::fs::write(&file, FORBID).unwrap();
        let live = LiveUnified::load(vec![file.clone()], true).unwrap();
        std::fs::write(&file, "").unwrap();
        assert!(matches!(live.reload(), Reload::Reloaded { policies: 0 }));
    }
}
