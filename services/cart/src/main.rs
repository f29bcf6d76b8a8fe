//! `emporium-cart`: the cart service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("cart", |config_file, env| {
        let config = emporium_cart::CartConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_cart::CartServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
