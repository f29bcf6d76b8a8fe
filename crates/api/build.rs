//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a target
    // directory shared by two checkouts reuses the compiled script.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?;
    let root = PathBuf::from(manifest_dir).join("../../proto");
    let files = [
        "emporium/types/v1/types.proto",
        "emporium/catalog/v1/catalog.proto",
        "emporium/accounts/v1/accounts.proto",
        "emporium/cart/v1/cart.proto",
        "emporium/currency/v1/currency.proto",
        "emporium/inventory/v1/inventory.proto",
        "emporium/payment/v1/payment.proto",
        "emporium/shipping/v1/shipping.proto",
        "emporium/checkout/v1/checkout.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("emporium_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(&descriptor_path)
        .compile_fds(fds)?;
    Ok(())
}
