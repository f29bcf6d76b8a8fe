//! `emporium-checkout`: the checkout service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("checkout", |config_file, env| {
        let sources = emporium_chassis::config::Sources {
            file: config_file,
            env,
        };
        let config = emporium_checkout::CheckoutConfig::load(Default::default(), sources)?;
        Ok(async move |shutdown| {
            emporium_checkout::CheckoutServer::build(config)
                .await?
                .run(shutdown)
                .await?;
            Ok(())
        })
    })
}
