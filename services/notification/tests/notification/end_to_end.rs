//! The running service, fed through the embedded event log as checkout and
//! shipping feed it, writing `.eml` files as it does in `emporium up`.

use emporium_chassis::config::Table;
use emporium_chassis::lifecycle::Stopped;
use emporium_notification::domain::{MessageKind, MessageStatus};
use emporium_testkit::{Backend, TestDb};

use crate::support::{
    consumed_everything, eml_files, eventually, file_names, log_bus, metrics_show, new_order_id,
    order_placed, placed_envelope, producer, shipment_created, shipped_envelope, spawn,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_and_its_shipment_become_two_eml_files() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = log_bus(dir.path());
    let mail_dir = dir.path().join("mail");
    let (service, store) = spawn(&db, &events, &mail_dir, Table::new()).await;
    let bus = producer(&events).await;

    let order_id = new_order_id();
    let placed = placed_envelope(&order_placed(&order_id, Some("ada@example.com")));
    let shipped = shipped_envelope(&shipment_created(&order_id, "EMP0123456789AB"));
    bus.publish(&placed).await.unwrap();
    bus.publish(&shipped).await.unwrap();

    let files = eventually("two .eml files are written", || async {
        let files = eml_files(&mail_dir);
        (files.len() == 2).then_some(files)
    })
    .await;
    let short = &order_id.replace('-', "")[24..];
    let by_subject = |suffix: &str| {
        files
            .iter()
            .find(|f| f.header("subject").ends_with(suffix))
            .unwrap_or_else(|| panic!("no e-mail whose subject ends with {suffix:?}: {files:?}"))
    };
    let confirmation = by_subject("is confirmed");
    let shipment = by_subject("has shipped");
    assert_eq!(
        confirmation.header("subject"),
        format!("Your Emporium order {short} is confirmed")
    );
    assert_eq!(
        shipment.header("subject"),
        format!("Your Emporium order {short} has shipped")
    );
    for mail in [confirmation, shipment] {
        assert_eq!(mail.header("to"), "ada@example.com");
        assert_eq!(mail.header("from"), "Emporium <orders@emporium.example>");
        assert_eq!(mail.header("mime-version"), "1.0");
        assert_eq!(mail.header("content-type"), "text/plain; charset=utf-8");
        let name = mail.path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(
            mail.header("message-id"),
            format!("<{name}@emporium.local>"),
            "the file is named after the message id"
        );
    }
    assert!(
        shipment
            .body
            .contains("Tracking number:  EMP0123456789AB\r\n"),
        "{}",
        shipment.body
    );
    assert!(
        confirmation.body.contains("Total:  EUR 49.48\r\n"),
        "{}",
        confirmation.body
    );
    assert!(
        file_names(&mail_dir).iter().all(|n| n.ends_with(".eml")),
        "no temporary files are left: {:?}",
        file_names(&mail_dir)
    );

    let messages = eventually("both messages are marked sent", || async {
        let messages = store.messages().await.ok()?;
        messages
            .iter()
            .all(|m| m.status == MessageStatus::Sent)
            .then_some(messages)
    })
    .await;
    assert_eq!(
        messages.iter().map(|m| m.kind).collect::<Vec<_>>(),
        [MessageKind::OrderConfirmation, MessageKind::OrderShipped]
    );
    assert!(messages.iter().all(|m| m.attempts == 1));
    metrics_show(
        &service,
        &[
            r#"notification_messages_sent_total{service="notification",kind="order_confirmation"} 1"#,
            r#"notification_messages_sent_total{service="notification",kind="order_shipped"} 1"#,
            r#"notification_events_total{service="notification",type="order.placed.v1",outcome="applied"} 1"#,
            r#"notification_events_total{service="notification",type="shipment.created.v1",outcome="applied"} 1"#,
        ],
    )
    .await;
    assert_eq!(
        service.stop().await.unwrap(),
        Stopped::Drained,
        "an idle service stops within its drain timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_delivered_again_send_nothing_twice() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = log_bus(dir.path());
    let mail_dir = dir.path().join("mail");
    let (service, store) = spawn(&db, &events, &mail_dir, Table::new()).await;
    let bus = producer(&events).await;

    let order_id = new_order_id();
    let placed = placed_envelope(&order_placed(&order_id, Some("ada@example.com")));
    let shipped = shipped_envelope(&shipment_created(&order_id, "EMP0123456789AB"));
    for envelope in [&placed, &placed, &shipped, &shipped] {
        bus.publish(envelope).await.unwrap();
    }
    consumed_everything(bus.as_ref()).await;
    eventually("both e-mails are sent", || async {
        let messages = store.messages().await.ok()?;
        (messages.len() == 2 && messages.iter().all(|m| m.status == MessageStatus::Sent))
            .then_some(())
    })
    .await;
    assert_eq!(eml_files(&mail_dir).len(), 2);
    service.stop().await.unwrap();

    // The consumer forgets its position, as after a lost broker state: a
    // new instance is handed every retained event again.
    bus.delete_consumer("notification").await.unwrap();
    let (again, store) = spawn(&db, &events, &mail_dir, Table::new()).await;
    consumed_everything(bus.as_ref()).await;
    metrics_show(
        &again,
        &[
            r#"notification_events_total{service="notification",type="order.placed.v1",outcome="duplicate"} 1"#,
            r#"notification_events_total{service="notification",type="shipment.created.v1",outcome="duplicate"} 1"#,
        ],
    )
    .await;
    assert_eq!(store.messages().await.unwrap().len(), 2);
    assert_eq!(eml_files(&mail_dir).len(), 2);
    again.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_without_an_address_is_consumed_without_mail() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = log_bus(dir.path());
    let mail_dir = dir.path().join("mail");
    let (service, store) = spawn(&db, &events, &mail_dir, Table::new()).await;
    let bus = producer(&events).await;

    let order_id = new_order_id();
    let placed = placed_envelope(&order_placed(&order_id, None));
    let shipped = shipped_envelope(&shipment_created(&order_id, "EMP1"));
    bus.publish(&placed).await.unwrap();
    bus.publish(&shipped).await.unwrap();
    consumed_everything(bus.as_ref()).await;
    assert!(
        bus.dead_letters(Some("notification"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.messages().await.unwrap().is_empty());
    assert!(eml_files(&mail_dir).is_empty());
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_without_its_bus_and_consumes_once_the_bus_is_there() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A file where the log's directory must go: the bus cannot open.
    let blocked = dir.path().join("bus");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let events = log_bus(&blocked);
    assert!(emporium_eventbus::connect(&events).await.is_err());
    let mail_dir = dir.path().join("mail");
    let (service, _store) = spawn(&db, &events, &mail_dir, Table::new()).await;
    metrics_show(
        &service,
        &[r#"emporium_consumer_lag_messages{service="notification",consumer="notification"} 0"#],
    )
    .await;

    std::fs::remove_file(&blocked).unwrap();
    let bus = producer(&events).await;
    let order_id = new_order_id();
    bus.publish(&placed_envelope(&order_placed(
        &order_id,
        Some("ada@example.com"),
    )))
    .await
    .unwrap();
    eventually("the order's e-mail is written", || async {
        (eml_files(&mail_dir).len() == 1).then_some(())
    })
    .await;
    assert_eq!(service.stop().await.unwrap(), Stopped::Drained);
}
