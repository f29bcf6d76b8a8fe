//! `emporium-notification`: the notification service on its own, as its container runs it.

fn main() -> std::process::ExitCode {
    emporium_chassis::lifecycle::main("notification", |config_file, env| {
        let config = emporium_notification::NotificationConfig::load(
            Default::default(),
            emporium_chassis::config::Sources {
                file: config_file,
                env,
            },
        )?;
        Ok(async move |shutdown| {
            let server = emporium_notification::NotificationServer::build(config).await?;
            server.run(shutdown).await?;
            Ok(())
        })
    })
}
