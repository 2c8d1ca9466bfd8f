//! Policies built into the binary, so the demo runs with nothing else installed.

/// The upstream demo's authorization `Policy` objects.
pub const DEMO_AUTHORIZATION: &str =
    include_str!("../../../examples/policies/demo/authorization-policy.yaml");
/// The upstream demo's admission `Policy` objects (incl. `label-enforcement-policy`).
pub const DEMO_ADMISSION: &str = include_str!("../../../examples/policies/demo/admission-policy.yaml");

/// Write the demo policies into `dir` as a policy directory.
pub fn write_demo_policies(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(dir.join("authorization-policy.yaml"), DEMO_AUTHORIZATION)?;
    std::fs::write(dir.join("admission-policy.yaml"), DEMO_ADMISSION)
}
