//! Any text as a Cedar policy file and as Policy-object YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::document::{DocumentKind, parse_document};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_document(&DocumentKind::CedarFile { file_name: "fuzz.cedar".into() }, text);
        let _ = rampart_policy::store::crd::parse_policy_objects(text, "fuzz.yaml");
    }
});
