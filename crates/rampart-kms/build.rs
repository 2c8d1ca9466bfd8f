//! Generates the KMS v2 gRPC types and service from proto/kms_v2.proto. The .proto is compiled
//! by protox (pure Rust), so building Rampart needs no protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kms_v2.proto");
    let descriptors = protox::compile(["proto/kms_v2.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
