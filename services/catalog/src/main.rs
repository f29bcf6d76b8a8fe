//! `emporium-catalog`: the catalog service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("catalog", |config_file, env| {
        let config = emporium_catalog::CatalogConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_catalog::CatalogServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
