//! `emporium-shipping`: the shipping service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("shipping", |config_file, env| {
        let config = emporium_shipping::ShippingConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_shipping::ShippingServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
