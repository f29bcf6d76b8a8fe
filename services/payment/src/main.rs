//! `emporium-payment`: the payment service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("payment", |config_file, env| {
        let config = emporium_payment::PaymentConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_payment::PaymentServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
