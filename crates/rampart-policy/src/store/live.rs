//! A hot-reloading engine: readers get a consistent snapshot; reloads swap atomically.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use super::{LoadFailure, LoadReport, PolicyCounts, PolicySources, emptied_sources};
use crate::engine::Engine;

/// The engine currently serving, and the sources to rebuild it from.
#[derive(Debug)]
pub struct LiveEngine {
    current: ArcSwap<Engine>,
    sources: PolicySources,
    /// Bumped on every swap, so caches of decisions can tell stale entries apart.
    generation: AtomicU64,
    /// Policies per file of the engine serving now, to notice a reload that empties one.
    counts: Mutex<PolicyCounts>,
    /// What the last refused reload would have emptied; cleared by a successful reload.
    refused: Mutex<Vec<String>>,
    /// The schema warnings of the engine serving now, so a reload reports only new ones:
    /// every Policy object change reloads, and repeating each warning then buries the news.
    warned: Mutex<BTreeSet<String>>,
}

/// What a reload did; passed to the observer (metrics, logs).
#[derive(Debug)]
pub enum ReloadEvent {
    Reloaded {
        policies: usize,
        /// Schema warnings the previous engine did not have (each reported once).
        warnings: Vec<String>,
    },
    /// The new files are bad; the previous engine keeps serving.
    Failed(LoadFailure),
    /// The new files parse, but would remove every policy of these files or tiers; the previous
    /// engine keeps serving (`allow_policy_removal` lets such a reload through).
    Refused { emptied: Vec<String> },
}

/// Keeps the file watcher alive; dropping it stops reloading.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
}

/// Wait this long after the last change before reloading, so an editor's save or a
/// ConfigMap's symlink swap is read once, complete.
const DEBOUNCE: Duration = Duration::from_millis(200);

impl LiveEngine {
    /// Load the sources once; fails (with every error) when any file is bad. Returns the
    /// validation warnings of the load.
    pub fn load(sources: PolicySources) -> Result<(Arc<Self>, Vec<String>), LoadFailure> {
        let LoadReport { engine, warnings, counts } = sources.load()?;
        Ok((
            Arc::new(LiveEngine {
                current: ArcSwap::from_pointee(engine),
                sources,
                generation: AtomicU64::new(0),
                counts: Mutex::new(counts),
                refused: Mutex::new(Vec::new()),
                warned: Mutex::new(warnings.iter().cloned().collect()),
            }),
            warnings,
        ))
    }

    /// Wrap an already-built engine (tests, the demo). `reload` rebuilds from `sources`.
    pub fn from_engine(engine: Engine, sources: PolicySources) -> Arc<Self> {
        Arc::new(LiveEngine {
            current: ArcSwap::from_pointee(engine),
            sources,
            generation: AtomicU64::new(0),
            counts: Mutex::new(PolicyCounts::new()),
            refused: Mutex::new(Vec::new()),
            warned: Mutex::default(),
        })
    }

    /// The engine to use for one request. Hold the `Arc` for the whole request so every
    /// tier is read from the same snapshot.
    pub fn engine(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// The policy generation, bumped by every successful reload. An engine read *after* this
    /// is at least this generation (the engine is stored before the counter moves), so an
    /// answer cached under it is never older than the policies it is filed under.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Parse and schema-check one `Policy` object (as the apiserver sends it) with the settings
    /// of the serving sources: `Ok(warnings)`, or every error, each naming `line:col`.
    pub fn check_policy_object(&self, object: &serde_json::Value) -> Result<Vec<String>, String> {
        let doc = super::crd::policy_from_object(object).map_err(|e| e.to_string())?;
        self.sources
            .check_document(&doc)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    }

    /// The sources this engine is rebuilt from.
    pub fn sources(&self) -> &PolicySources {
        &self.sources
    }

    /// What the last reload refused to apply (files or tiers it would have emptied), until a
    /// reload succeeds.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Rebuild from the sources; on failure, or when the new files would empty a file or a
    /// tier, keep serving the previous engine.
    pub fn reload(&self) -> ReloadEvent {
        match self.sources.load() {
            Ok(LoadReport { engine, warnings, counts }) => {
                // Fail closed: an emptied file most often means a truncated write or a mount
                // glitch, and taking it at its word would silently drop its forbids.
                let mut last = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                let emptied = emptied_sources(&last, &counts);
                let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
                if !emptied.is_empty() && !self.sources.allow_policy_removal {
                    refused.clone_from(&emptied);
                    return ReloadEvent::Refused { emptied };
                }
                refused.clear();
                *last = counts;
                drop((last, refused));
                let policies = engine.policy_count();
                self.current.store(Arc::new(engine));
                self.generation.fetch_add(1, Ordering::AcqRel);
                let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
                let fresh = warnings.iter().filter(|w| !warned.contains(*w)).cloned().collect();
                *warned = warnings.into_iter().collect();
                ReloadEvent::Reloaded { policies, warnings: fresh }
            }
            Err(failure) => ReloadEvent::Failed(failure),
        }
    }

    /// Watch the tier paths and reload on change, calling `observe` after every attempt.
    pub fn watch(
        self: &Arc<Self>,
        observe: impl Fn(&ReloadEvent) + Send + 'static,
    ) -> Result<WatchGuard, notify::Error> {
        let paths = self.sources.tiers.iter().chain(&self.sources.rbac).chain(&self.sources.access_entries);
        let live = Arc::clone(self);
        watch_paths(paths, "policy-reload", move || observe(&live.reload()))
    }
}

/// Call `on_change` (on a thread of its own, debounced) whenever something under `paths`
/// changes: what every hot-reloading policy source uses.
pub fn watch_paths<'p>(
    paths: impl IntoIterator<Item = &'p PathBuf>,
    thread_name: &str,
    on_change: impl Fn() + Send + 'static,
) -> Result<WatchGuard, notify::Error> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    for path in paths {
        watcher.watch(watch_target(path).as_path(), RecursiveMode::NonRecursive)?;
    }
    std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            while rx.recv().is_ok() {
                while rx.recv_timeout(DEBOUNCE).is_ok() {}
                on_change();
            }
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(WatchGuard { _watcher: watcher })
}

/// Watch a directory itself, and a single-file tier through its directory (editors replace
/// files by rename, which a watch on the old inode would miss).
fn watch_target(path: &std::path::Path) -> PathBuf {
    if path.is_file() {
        path.parent()
            .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineOptions;

    const FORBID: &str = "forbid(principal, action, resource) when { resource has namespace && resource.namespace == \"prod\" };";

    fn tier() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tier = dir.path().join("org");
        std::fs::create_dir(&tier).unwrap();
        std::fs::write(tier.join("a.cedar"), FORBID).unwrap();
        std::fs::write(tier.join("b.cedar"), FORBID).unwrap();
        (dir, tier)
    }

    #[test]
    fn an_emptied_file_does_not_drop_its_policies_unless_allowed() {
        let (_dir, tier) = tier();
        let (live, _) =
            LiveEngine::load(PolicySources::new(vec![tier.clone()], EngineOptions::default())).unwrap();
        std::fs::write(tier.join("a.cedar"), "").unwrap();
        match live.reload() {
            ReloadEvent::Refused { emptied } => assert!(emptied[0].contains("a.cedar"), "{emptied:?}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(live.engine().policy_count(), 2);
        assert!(live.refused()[0].contains("a.cedar"));
        // Deleting a file on purpose takes effect (the tier keeps a policy).
        std::fs::remove_file(tier.join("a.cedar")).unwrap();
        assert!(matches!(live.reload(), ReloadEvent::Reloaded { policies: 1, .. }));
        assert!(live.refused().is_empty());
        // Deleting the last one would empty the tier: refused.
        std::fs::remove_file(tier.join("b.cedar")).unwrap();
        assert!(matches!(live.reload(), ReloadEvent::Refused { .. }));
        assert_eq!(live.engine().policy_count(), 1);
    }

    #[test]
    fn allow_policy_removal_lets_an_emptied_file_through() {
        let (_dir, tier) = tier();
        let mut sources = PolicySources::new(vec![tier.clone()], EngineOptions::default());
        sources.allow_policy_removal = true;
        let (live, _) = LiveEngine::load(sources).unwrap();
        std::fs::write(tier.join("a.cedar"), "// nothing left\n").unwrap();
        assert!(matches!(live.reload(), ReloadEvent::Reloaded { policies: 1, .. }));
    }

    #[test]
    fn a_reload_reports_only_warnings_it_has_not_reported() {
        let (_dir, tier) = tier();
        let unguarded =
            "permit(principal, action, resource is k8s::Resource) when { resource.name == \"x\" };";
        std::fs::write(tier.join("c.cedar"), unguarded).unwrap();
        let (live, warnings) =
            LiveEngine::load(PolicySources::new(vec![tier.clone()], EngineOptions::default())).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("c.cedar:1:"), "{warnings:?}");
        let ReloadEvent::Reloaded { warnings, .. } = live.reload() else { panic!("reload failed") };
        assert!(warnings.is_empty(), "already reported: {warnings:?}");
        std::fs::write(tier.join("d.cedar"), unguarded).unwrap();
        let ReloadEvent::Reloaded { warnings, .. } = live.reload() else { panic!("reload failed") };
        assert_eq!(warnings.len(), 1, "only the new file's: {warnings:?}");
        assert!(warnings[0].contains("d.cedar:1:"), "{warnings:?}");
    }
}
