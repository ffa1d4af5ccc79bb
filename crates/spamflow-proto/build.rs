//! Compiles `proto/spamflow/v1` with protox, a protobuf compiler written in Rust, so a fresh
//! machine needs no system `protoc`. The encoded file descriptor set is kept for server
//! reflection.

use std::path::PathBuf;

use prost::Message;

const PROTO_ROOT: &str = "../../proto";
const PROTO_FILES: &[&str] = &[
    "spamflow/v1/bloom.proto",
    "spamflow/v1/detector.proto",
    "spamflow/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let files: Vec<PathBuf> = PROTO_FILES
        .iter()
        .map(|file| PathBuf::from(PROTO_ROOT).join(file))
        .collect();
    let descriptors = protox::compile(&files, [PROTO_ROOT])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("spamflow_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
