//! Compiles `proto/` (our subset of etcd's v3 API) with protox (pure Rust),
//! so no system `protoc` is needed. Client code only: we never serve etcd.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a target
    // directory shared by two checkouts reuses the compiled script.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?;
    let root = PathBuf::from(manifest_dir).join("proto");
    let files = ["kv.proto", "etcd.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
