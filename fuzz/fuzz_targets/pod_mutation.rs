//! Any bytes as a pod being created: IRSA and Pod Identity injection against service accounts
//! that match every pod of the fuzzed namespace.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_identity::inject::{IdentitySources, InjectConfig};

fn sources() -> &'static IdentitySources {
    static SOURCES: OnceLock<IdentitySources> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let mut s = IdentitySources::default();
        let manifest = r#"{"kind":"List","items":[
          {"kind":"ServiceAccount","metadata":{"name":"default","namespace":"ns","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/r","eks.amazonaws.com/token-expiration":"3600"}}},
          {"kind":"ServiceAccount","metadata":{"name":"app","namespace":"ns"}}]}"#;
        let _ = s.add_manifests("fuzz", manifest);
        s.pod_identity.insert(("ns".into(), "app".into()));
        s
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(pod) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = InjectConfig::default().mutate(&pod, "ns", sources(), &mut || 0);
    }
});
