//! Generates the server side of the client protocol from `proto/` with a
//! protocol compiler written in Rust (no `protoc` on the build machine).

use std::error::Error;

/// The protocol files the server implements (their imports come along).
const PROTOS: &[&str] = &[
    "proto/streams.proto",
    "proto/persistent.proto",
    "proto/serverfeatures.proto",
    "proto/v2/streams.proto",
    "proto/v2/errors.proto",
    "proto/kurrent/rpc/errors.proto",
];

/// Map fields generated as ordered maps, so what is built from them (the
/// v2 append's record properties as a JSON object) comes out the same
/// whatever order the client sent the entries in.
const ORDERED_MAPS: &[&str] = &[".kurrentdb.protocol.v2.streams.AppendRecord.properties"];

fn main() -> Result<(), Box<dyn Error>> {
    // A directory listed here is watched with everything under it.
    for file in std::fs::read_dir("proto")? {
        println!("cargo:rerun-if-changed={}", file?.path().display());
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        .bytes(["."])
        .btree_map(ORDERED_MAPS)
        .compile_fds(descriptors)?;
    Ok(())
}
