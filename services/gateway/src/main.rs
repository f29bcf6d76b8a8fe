//! `emporium-gateway`: the API gateway on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("gateway", |config_file, env| {
        let sources = emporium_chassis::config::Sources {
            file: config_file,
            env,
        };
        let config = emporium_gateway::GatewayConfig::load(Default::default(), sources)?;
        Ok(async move |shutdown| {
            emporium_gateway::GatewayServer::build(config)?
                .run(shutdown)
                .await?;
            Ok(())
        })
    })
}
