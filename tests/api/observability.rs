//! Request ids, metrics, health.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::spawn_store;

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let store = spawn_store().await;
    let echoed = store
        .http
        .get(store.gateway.url("/api/v1/categories"))
        .header("x-request-id", "test-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "test-req-42");
    let generated = store.get("/api/v1/products/bad").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32);
}

fn counter(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn gateway_metrics_count_requests_per_route_and_status() {
    let store = spawn_store().await;
    let series = r#"http_server_requests_total{service="gateway",route="/api/v1/products/{id}",method="GET",status="404"}"#;
    let metrics_url = store.gateway.admin_url("/metrics");
    let before = counter(
        &store
            .http
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        series,
    );
    for _ in 0..3 {
        store
            .get("/api/v1/products/01920000-0000-7000-8000-000000000000")
            .await;
    }
    let text = store
        .http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(counter(&text, series), before + 3, "{text}");
    assert!(
        text.contains("http_server_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains(r#"http_server_requests_in_flight{service="gateway"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn catalog_answers_the_grpc_health_protocol() {
    let store = spawn_store().await;
    let channel = tonic::transport::Endpoint::from_shared(store.catalog.base_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "emporium.catalog.v1.CatalogService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

/// The names a reflection client of `version` sees on the catalog's port.
macro_rules! listed_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new($channel);
        let mut answers = client
            .server_reflection_info(futures_util::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a service list: {answer:?}");
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        names
    }};
}

#[tokio::test]
async fn reflection_lists_only_what_the_port_serves_in_v1_and_v1alpha() {
    let store = spawn_store().await;
    let channel = tonic::transport::Endpoint::from_shared(store.catalog.base_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let expected = [
        "emporium.catalog.v1.CatalogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ];
    assert_eq!(listed_services!(v1, channel.clone()), expected);
    let expected_alpha = [
        "emporium.catalog.v1.CatalogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    assert_eq!(listed_services!(v1alpha, channel), expected_alpha);
}
