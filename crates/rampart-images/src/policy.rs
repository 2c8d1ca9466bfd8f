//! Image policies: which images need which signatures and attestations, as files or as
//! `ImagePolicy` objects (`rampart.dev/v1alpha1`, cluster-scoped), one document each.
//!
//! ```yaml
//! apiVersion: rampart.dev/v1alpha1
//! kind: ImagePolicy
//! metadata: {name: release-signed}
//! spec:
//!   images: ["registry.example.com/prod/*"]   # globs over registry/repository
//!   namespaces: ["prod-*"]                     # default: every namespace
//!   authorities:                               # any one of them must have signed
//!     - name: release
//!       key: {file: cosign.pub}                # or pem, secret, kms
//!   attestations:
//!     - predicateType: https://slsa.dev/provenance/v0.2
//!       conditions:
//!         - {path: /predicate/builder/id, equals: https://ci.example.com}
//! ```
//!
//! Every policy whose `images` and `namespaces` match an image applies, and all of them must
//! pass (as Kyverno combines its rules).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::ImageError;

pub const API_VERSION: &str = "rampart.dev/v1alpha1";
pub const KIND: &str = "ImagePolicy";

/// One `ImagePolicy` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagePolicyDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ImagePolicySpec,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// Globs (`*` only) over `registry/repository`, normalised (`docker.io/library/nginx`).
    pub images: Vec<String>,
    /// Namespace globs the policy applies in; empty: all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Rewrite verified tags to their digests (default true).
    #[serde(default = "yes")]
    pub mutate_digest: bool,
    /// Any one of these must have signed the image (none: no signature is required, only the
    /// attestations).
    #[serde(default)]
    pub authorities: Vec<AuthoritySpec>,
    #[serde(default)]
    pub attestations: Vec<AttestationSpec>,
}

fn yes() -> bool {
    true
}

/// A signer the policy trusts: a public key or a certificate authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthoritySpec {
    pub name: String,
    #[serde(default)]
    pub key: Option<KeySource>,
    #[serde(default)]
    pub certificate: Option<CertificateSpec>,
}

/// Where a public key (PEM: ECDSA P-256/P-384, Ed25519 or RSA) comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeySource {
    /// A PEM file, relative to the policy file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The PEM itself.
    #[serde(default)]
    pub pem: Option<String>,
    /// A key of a Secret (`namespace`, `name`, `key`), read from the cluster.
    #[serde(default)]
    pub secret: Option<SecretKeyRef>,
    /// An AWS KMS key (ARN or `alias/…`); its public key is read with `GetPublicKey`.
    #[serde(default)]
    pub kms: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// Keyless-style signatures checked against your own CA, as `cosign verify
/// --certificate-chain --certificate-identity --certificate-oidc-issuer` does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateSpec {
    /// PEM bundle of the roots (and intermediates) to trust, relative to the policy file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub ca: Option<String>,
    /// Exact SAN (e-mail or URI) of the signing certificate.
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub identity_regexp: Option<String>,
    /// Exact OIDC issuer recorded in the certificate (Fulcio's extension).
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub oidc_issuer_regexp: Option<String>,
}

/// An in-toto attestation the image must carry, signed by one of the policy's authorities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttestationSpec {
    pub predicate_type: String,
    /// Authority names that may sign it; empty: any of the policy's authorities.
    #[serde(default)]
    pub authorities: Vec<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A test on the in-toto statement, at a JSON pointer (`/predicate/builder/id`). Exactly one
/// operator is set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    pub path: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub not_equals: Option<Value>,
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<Value>>,
    /// A `*` glob over a string value.
    #[serde(default)]
    pub matches: Option<String>,
    #[serde(default)]
    pub less_than_or_equal: Option<f64>,
    #[serde(default)]
    pub greater_than_or_equal: Option<f64>,
    #[serde(default)]
    pub exists: Option<bool>,
}

impl Condition {
    fn operators(&self) -> usize {
        [
            self.equals.is_some(),
            self.not_equals.is_some(),
            self.in_.is_some(),
            self.matches.is_some(),
            self.less_than_or_equal.is_some(),
            self.greater_than_or_equal.is_some(),
            self.exists.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }

    /// `Ok(())` when the statement satisfies the condition, or what it found instead.
    pub fn check(&self, statement: &Value) -> Result<(), String> {
        let found = statement.pointer(&self.path);
        let shown = |v: Option<&Value>| v.map_or("nothing".to_string(), |v| v.to_string());
        let fail = |want: String| Err(format!("{} {want}, found {}", self.path, shown(found)));
        if let Some(exists) = self.exists {
            return if found.is_some() == exists {
                Ok(())
            } else {
                fail(if exists { "must exist".into() } else { "must not exist".into() })
            };
        }
        if let Some(want) = &self.equals {
            return if found == Some(want) { Ok(()) } else { fail(format!("must equal {want}")) };
        }
        if let Some(want) = &self.not_equals {
            return if found != Some(want) { Ok(()) } else { fail(format!("must not equal {want}")) };
        }
        if let Some(set) = &self.in_ {
            return if found.is_some_and(|v| set.contains(v)) {
                Ok(())
            } else {
                fail(format!("must be one of {}", Value::Array(set.clone())))
            };
        }
        if let Some(glob) = &self.matches {
            return if found.and_then(Value::as_str).is_some_and(|s| rampart_types::glob::star(glob, s)) {
                Ok(())
            } else {
                fail(format!("must match {glob:?}"))
            };
        }
        let number = found.and_then(Value::as_f64);
        if let Some(max) = self.less_than_or_equal {
            return if number.is_some_and(|n| n <= max) {
                Ok(())
            } else {
                fail(format!("must be ≤ {max}"))
            };
        }
        if let Some(min) = self.greater_than_or_equal {
            return if number.is_some_and(|n| n >= min) {
                Ok(())
            } else {
                fail(format!("must be ≥ {min}"))
            };
        }
        fail("has no operator".into())
    }
}

impl ImagePolicyDocument {
    /// Whether the policy covers this image (normalised name) in this namespace.
    pub fn applies(&self, image_name: &str, namespace: &str) -> bool {
        self.spec.images.iter().any(|g| rampart_types::glob::star(g, image_name))
            && (self.spec.namespaces.is_empty()
                || self.spec.namespaces.iter().any(|g| rampart_types::glob::star(g, namespace)))
    }

    /// Refuse what would silently verify nothing, naming the field.
    fn validate(&self, origin: &str) -> Result<(), ImageError> {
        let name = &self.metadata.name;
        let bad = |field: String, message: &str| ImageError::Policy {
            origin: origin.to_string(),
            message: format!("ImagePolicy {name:?}: {field}: {message}"),
        };
        if self.api_version != API_VERSION || self.kind != KIND {
            return Err(bad(
                "apiVersion/kind".into(),
                &format!("must be {API_VERSION} {KIND}, not {} {}", self.api_version, self.kind),
            ));
        }
        if self.spec.images.is_empty() {
            return Err(bad("spec.images".into(), "name at least one image glob"));
        }
        if self.spec.authorities.is_empty() && self.spec.attestations.is_empty() {
            return Err(bad(
                "spec".into(),
                "name authorities, attestations or both; this policy checks nothing",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, a) in self.spec.authorities.iter().enumerate() {
            let field = format!("spec.authorities[{i}]");
            if !names.insert(a.name.as_str()) {
                return Err(bad(format!("{field}.name"), &format!("{:?} appears twice", a.name)));
            }
            match (&a.key, &a.certificate) {
                (Some(k), None) => {
                    let sources = [k.file.is_some(), k.pem.is_some(), k.secret.is_some(), k.kms.is_some()];
                    if sources.iter().filter(|s| **s).count() != 1 {
                        return Err(bad(format!("{field}.key"), "set exactly one of file, pem, secret, kms"));
                    }
                }
                (None, Some(c)) => {
                    if c.ca_file.is_some() == c.ca.is_some() {
                        return Err(bad(format!("{field}.certificate"), "set exactly one of caFile, ca"));
                    }
                    if c.identity.is_none() && c.identity_regexp.is_none() {
                        return Err(bad(
                            format!("{field}.certificate"),
                            "set identity or identityRegexp (as cosign's --certificate-identity): \
                             without one, any certificate from the CA would do",
                        ));
                    }
                    if c.oidc_issuer.is_none() && c.oidc_issuer_regexp.is_none() {
                        return Err(bad(
                            format!("{field}.certificate"),
                            "set oidcIssuer or oidcIssuerRegexp",
                        ));
                    }
                    for (which, re) in
                        [("identityRegexp", &c.identity_regexp), ("oidcIssuerRegexp", &c.oidc_issuer_regexp)]
                    {
                        if let Some(re) = re {
                            regex::Regex::new(re)
                                .map_err(|e| bad(format!("{field}.certificate.{which}"), &e.to_string()))?;
                        }
                    }
                }
                _ => return Err(bad(field, "set exactly one of key, certificate")),
            }
        }
        for (i, att) in self.spec.attestations.iter().enumerate() {
            let field = format!("spec.attestations[{i}]");
            if self.spec.authorities.is_empty() {
                return Err(bad(
                    field,
                    "attestations are checked against the policy's authorities: name one",
                ));
            }
            for who in &att.authorities {
                if !names.contains(who.as_str()) {
                    return Err(bad(format!("{field}.authorities"), &format!("no authority named {who:?}")));
                }
            }
            for (j, c) in att.conditions.iter().enumerate() {
                if c.operators() != 1 {
                    return Err(bad(format!("{field}.conditions[{j}]"), "set exactly one operator"));
                }
                if !c.path.starts_with('/') {
                    return Err(bad(
                        format!("{field}.conditions[{j}].path"),
                        "a JSON pointer into the in-toto statement, such as /predicate/builder/id",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Parse every `ImagePolicy` in a YAML stream (documents of other kinds are refused: a typo in
/// `kind` must not silently disable a policy). Relative key and CA files are resolved against
/// `base_dir`.
pub fn parse_documents(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
) -> Result<Vec<ImagePolicyDocument>, ImageError> {
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)
            .map_err(|e| ImageError::Policy { origin: origin.to_string(), message: e.to_string() })?;
        if value.is_null() {
            continue;
        }
        let mut policy: ImagePolicyDocument = serde_path_to_error::deserialize(value).map_err(|e| {
            ImageError::Policy { origin: origin.to_string(), message: format!("{}: {}", e.path(), e.inner()) }
        })?;
        policy.validate(origin)?;
        if let Some(base) = base_dir {
            for a in &mut policy.spec.authorities {
                if let Some(file) = a.key.as_mut().and_then(|k| k.file.as_mut()) {
                    *file = base.join(&*file);
                }
                if let Some(file) = a.certificate.as_mut().and_then(|c| c.ca_file.as_mut()) {
                    *file = base.join(&*file);
                }
            }
        }
        out.push(policy);
    }
    Ok(out)
}

/// One `ImagePolicy` object read from the cluster. Keys and CAs must be inline (`pem`, `ca`),
/// in a Secret or in KMS: a cluster object may not name files on Rampart's own filesystem.
pub fn from_object(value: Value, origin: &str) -> Result<ImagePolicyDocument, ImageError> {
    let policy: ImagePolicyDocument = serde_path_to_error::deserialize(value).map_err(|e| {
        ImageError::Policy { origin: origin.to_string(), message: format!("{}: {}", e.path(), e.inner()) }
    })?;
    policy.validate(origin)?;
    for (i, a) in policy.spec.authorities.iter().enumerate() {
        let names_file = a.key.as_ref().is_some_and(|k| k.file.is_some())
            || a.certificate.as_ref().is_some_and(|c| c.ca_file.is_some());
        if names_file {
            return Err(ImageError::Policy {
                origin: origin.to_string(),
                message: format!(
                    "ImagePolicy {:?}: spec.authorities[{i}]: a cluster object cannot name a file; use pem, ca, secret or kms",
                    policy.metadata.name
                ),
            });
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: ImagePolicy
metadata: {name: release}
spec:
  images: ["registry.example.com/prod/*"]
  namespaces: ["prod-*"]
  authorities:
    - name: release
      key: {file: cosign.pub}
  attestations:
    - predicateType: https://slsa.dev/provenance/v0.2
      conditions:
        - {path: /predicate/builder/id, equals: ci}
"#;

    #[test]
    fn parses_and_resolves_files_against_the_policy_directory() {
        let p = parse_documents(POLICY, "p.yaml", Some(Path::new("/etc/rampart"))).unwrap();
        assert_eq!(p.len(), 1);
        let key = p[0].spec.authorities[0].key.as_ref().unwrap();
        assert_eq!(key.file.as_deref(), Some(Path::new("/etc/rampart/cosign.pub")));
        assert!(p[0].spec.mutate_digest);
        assert!(p[0].applies("registry.example.com/prod/app", "prod-eu"));
        assert!(!p[0].applies("registry.example.com/dev/app", "prod-eu"));
        assert!(!p[0].applies("registry.example.com/prod/app", "dev"));
    }

    #[test]
    fn mistakes_name_the_field() {
        for (edit, field) in [
            (POLICY.replace("key: {file: cosign.pub}", "key: {}"), "spec.authorities[0].key"),
            (POLICY.replace("equals: ci", "equals: ci, exists: true"), "spec.attestations[0].conditions[0]"),
            (POLICY.replace("/predicate/builder/id", "predicate.builder.id"), ".conditions[0].path"),
            (POLICY.replace("kind: ImagePolicy", "kind: ImagePolcy"), "apiVersion/kind"),
            (POLICY.replace("namespaces:", "namespace:"), "spec.namespace: unknown field `namespace`"),
        ] {
            let e = parse_documents(&edit, "p.yaml", None).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("p.yaml"), "{field}: {e}");
        }
    }

    #[test]
    fn cluster_objects_cannot_name_files() {
        let value: Value = serde_yaml::from_str(POLICY).unwrap();
        let e = from_object(value, "cluster").unwrap_err().to_string();
        assert!(e.contains("cannot name a file"), "{e}");
        let inline = POLICY.replace("key: {file: cosign.pub}", "key: {pem: PEM}");
        assert!(from_object(serde_yaml::from_str(&inline).unwrap(), "cluster").is_ok());
    }

    #[test]
    fn a_certificate_authority_needs_an_identity() {
        let text = POLICY
            .replace("key: {file: cosign.pub}", "certificate: {caFile: ca.pem, oidcIssuer: https://issuer}");
        let e = parse_documents(&text, "p.yaml", None).unwrap_err().to_string();
        assert!(e.contains("identity"), "{e}");
    }

    #[test]
    fn conditions() {
        let statement = json!({"predicate": {"builder": {"id": "ci"}, "critical": 0, "tags": "v1.2"}});
        let c = |yaml: &str| serde_yaml::from_str::<Condition>(yaml).unwrap();
        assert!(c("{path: /predicate/builder/id, equals: ci}").check(&statement).is_ok());
        let e = c("{path: /predicate/builder/id, equals: other}").check(&statement).unwrap_err();
        assert!(e.contains("must equal \"other\"") && e.contains("found \"ci\""), "{e}");
        assert!(c("{path: /predicate/critical, lessThanOrEqual: 0}").check(&statement).is_ok());
        assert!(c("{path: /predicate/critical, greaterThanOrEqual: 1}").check(&statement).is_err());
        assert!(c("{path: /predicate/tags, matches: 'v1.*'}").check(&statement).is_ok());
        assert!(c("{path: /predicate/missing, exists: false}").check(&statement).is_ok());
        assert!(
            c("{path: /predicate/missing, in: [a]}").check(&statement).unwrap_err().contains("found nothing")
        );
        assert!(c("{path: /predicate/builder/id, notEquals: x}").check(&statement).is_ok());
    }
}
