//! `emporium-accounts`: the accounts service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("accounts", |config_file, env| {
        let config = emporium_accounts::AccountsConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_accounts::AccountsServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
