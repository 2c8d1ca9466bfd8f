//! Image references as a pod writes them, and the forms Rampart needs: the name policies match
//! (`registry/repository`, normalised as a container runtime does), the registry reference to
//! ask, and the pinned form written back (`repository@sha256:…`).

use oci_client::Reference;

use crate::ImageError;

/// One image reference from a pod spec.
#[derive(Debug, Clone)]
pub struct ImageReference {
    /// As written in the pod (`nginx:1.25`, `registry.example.com/team/app@sha256:…`).
    pub written: String,
    /// Parsed and normalised (`docker.io/library/nginx:1.25`).
    pub parsed: Reference,
}

impl ImageReference {
    pub fn parse(written: &str) -> Result<Self, ImageError> {
        let parsed = Reference::try_from(written)
            .map_err(|e| ImageError::Reference { image: written.to_string(), reason: e.to_string() })?;
        Ok(ImageReference { written: written.to_string(), parsed })
    }

    /// What image policies' globs match: `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.parsed.registry(), self.parsed.repository())
    }

    /// The digest written in the reference, if any (`repo:tag@sha256:…` counts: the runtime
    /// pulls by the digest and ignores the tag).
    pub fn digest(&self) -> Option<&str> {
        self.parsed.digest()
    }

    /// The reference as written, pinned: `repo@digest`, with the tag (and any old digest) dropped
    /// so nothing but the verified digest decides what runs.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", strip_tag_and_digest(&self.written))
    }

    /// The same repository at another tag (`sha256-<hex>.sig`), for cosign's signature objects.
    pub fn with_tag(&self, tag: String) -> Reference {
        Reference::with_tag(self.parsed.registry().to_string(), self.parsed.repository().to_string(), tag)
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.parsed.registry().to_string(),
            self.parsed.repository().to_string(),
            digest.to_string(),
        )
    }
}

/// `host:5000/a/b:tag@sha256:x` → `host:5000/a/b` (a `:` before the last `/` is a port).
fn strip_tag_and_digest(written: &str) -> &str {
    let without_digest = written.split_once('@').map_or(written, |(name, _)| name);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// cosign's tag for the signatures (`sig`) or attestations (`att`) of a digest:
/// `sha256:abc…` → `sha256-abc….sig`.
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_a_runtime_does() {
        let r = ImageReference::parse("nginx:1.25").unwrap();
        assert_eq!(r.name(), "docker.io/library/nginx");
        let r = ImageReference::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(r.name(), "127.0.0.1:5000/team/app");
        assert_eq!(r.digest(), None);
    }

    #[test]
    fn pinning_drops_the_tag_and_keeps_the_port() {
        let d = "sha256:c567f55239b1a07514a6892e4556b0d09a340f1f171fe0784aba342294f050e6";
        for (written, pinned) in [
            ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app"),
            ("nginx", "nginx"),
            ("nginx:1.25", "nginx"),
        ] {
            assert_eq!(ImageReference::parse(written).unwrap().pinned(d), format!("{pinned}@{d}"));
        }
        let both = format!("reg.example.com/app:v1@{d}");
        let r = ImageReference::parse(&both).unwrap();
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.pinned(d), format!("reg.example.com/app@{d}"));
    }

    #[test]
    fn bad_references_name_the_image() {
        let e = ImageReference::parse("UPPER/Case:tag").unwrap_err().to_string();
        assert!(e.contains("UPPER/Case:tag"), "{e}");
    }

    #[test]
    fn cosign_tags() {
        assert_eq!(cosign_tag("sha256:ab", "sig"), "sha256-ab.sig");
    }
}
