//! `emporium-currency`: the currency service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("currency", |config_file, env| {
        let config = emporium_currency::CurrencyConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_currency::CurrencyServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
