//! `emporium-inventory`: the inventory service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("inventory", |config_file, env| {
        let config = emporium_inventory::InventoryConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_inventory::InventoryServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
