//! Generates the server side of the client protocol from `proto/` with a
//! protocol compiler written in Rust (no `protoc` on the build machine).

use std::error::Error;

/// The protocol files the server implements (their imports come along).
const PROTOS: &[&str] = &[
    "proto/streams.proto",
    "proto/persistent.proto",
    "proto/serverfeatures.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for file in std::fs::read_dir("proto")? {
        println!("cargo:rerun-if-changed={}", file?.path().display());
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
