//! Any bytes as a SubjectAccessReview: decoded, checked against the limits, decided.
#![no_main]

#[path = "engine.rs"]
mod engine;

use libfuzzer_sys::fuzz_target;
use rampart_types::review::{limits, sar};

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = sar::decode(data)
        && limits::check_sar(&review.spec).is_ok()
    {
        let _ = engine::engine().authorize(&review.spec);
    }
});
