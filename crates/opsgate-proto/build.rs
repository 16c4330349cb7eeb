//! Compiles proto/opsgate/v1 with protox (pure Rust, no system protoc) into prost/tonic code and a descriptor set.

use std::path::PathBuf;

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "opsgate/v1/workflow.proto",
        "opsgate/v1/transition.proto",
        "opsgate/v1/gate.proto",
        "opsgate/v1/identity.proto",
        "opsgate/v1/audit.proto",
        "opsgate/v1/notification.proto",
        "opsgate/v1/catalog.proto",
    ];
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("opsgate_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are InvalidArgument, not Internal (see src/codec.rs).
        .codec_path("crate::codec::OpsgateCodec")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
