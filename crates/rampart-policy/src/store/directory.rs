//! Reading a tier from disk: a directory (non-recursive) or a single file.
//!
//! Symlinks are followed, because ConfigMap volume files are symlinks (upstream skipped them,
//! Appendix A #8); dot-files such as ConfigMap's `..data` are ignored.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ParsedDocument, crd, parse_located};
use crate::PolicyLoadError;
use crate::document::DocumentKind;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PolicyLoadError + '_ {
    move |source| PolicyLoadError::Io { path: path.to_path_buf(), source }
}

/// Files of a tier, sorted by name so tier contents do not depend on directory order.
pub fn tier_files(path: &Path) -> Result<Vec<PathBuf>, PolicyLoadError> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = !name.starts_with('.') && is_policy_file(&p);
        // `fs::metadata` follows symlinks.
        if wanted && fs::metadata(&p).map(|m| m.is_file()).unwrap_or(false) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// `.cedar`, `.yaml` and `.yml` files hold policies; anything else in the directory (a
/// kubeconfig, a README) is ignored.
pub fn is_policy_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("cedar" | "yaml" | "yml"))
}

/// The documents of each file of a tier, file by file.
pub(super) type TierDocuments = Vec<(PathBuf, Vec<Result<ParsedDocument, PolicyLoadError>>)>;

pub(super) fn read_tier(path: &Path) -> Result<TierDocuments, PolicyLoadError> {
    let mut files = Vec::new();
    for file in tier_files(path)? {
        let mut out = Vec::new();
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(source) => {
                out.push(Err(PolicyLoadError::Io { path: file.clone(), source }));
                files.push((file, out));
                continue;
            }
        };
        let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let location = file.display().to_string();
        if file.extension().is_some_and(|e| e == "cedar") {
            let kind = DocumentKind::CedarFile { file_name };
            out.push(parse_located(&kind, &text, &location).map(|policies| ParsedDocument {
                content_location: location.clone(),
                location,
                policies,
                enforce_validation: false,
            }));
        } else {
            match crd::parse_policy_objects(&text, &location) {
                Ok(objects) => out.extend(objects),
                Err(e) => out.push(Err(e)),
            }
        }
        files.push((file, out));
    }
    Ok(files)
}
