//! Any bytes as an AdmissionReview: decoded, checked against the limits, admitted.
#![no_main]

#[path = "engine.rs"]
mod engine;

use libfuzzer_sys::fuzz_target;
use rampart_types::review::{admission, limits};

fuzz_target!(|data: &[u8]| {
    let _ = admission::salvage_uid(data);
    if let Ok(review) = admission::decode(data) {
        let user = &review.request.user_info;
        if limits::check_user("request.userInfo", user.groups.as_deref(), user.extra.as_ref()).is_ok() {
            let _ = engine::engine().admit(&review.request);
        }
    }
});
