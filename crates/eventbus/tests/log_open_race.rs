//! Many handles opening one new log file at the same moment all succeed.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use emporium_eventbus::{EventBusConfig, LogConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handles_opening_a_new_log_at_once_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let config = EventBusConfig {
            log: LogConfig::at(dir.path().join("events.db")),
            ..EventBusConfig::default()
        };
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { emporium_eventbus::connect(&config).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            if let Err(e) = open.await.unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}
