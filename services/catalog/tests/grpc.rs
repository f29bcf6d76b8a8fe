//! The catalog's gRPC API over a real socket: status codes for bad input,
//! admin writes, and the admin port.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use emporium_api::catalog::v1 as pb;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_api::types::v1 as types;
use emporium_testkit::{Backend, SEED_CATALOG, TestDb, admin, customer, request_as, spawn_catalog};
use tonic::Code;
use tonic::transport::Channel;

async fn seeded() -> (
    TestDb,
    emporium_testkit::Running,
    CatalogServiceClient<Channel>,
) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    emporium_testkit::seed_catalog(&db, SEED_CATALOG)
        .await
        .unwrap();
    let catalog = spawn_catalog(&db).await.unwrap();
    let client = CatalogServiceClient::connect(catalog.base_url())
        .await
        .unwrap();
    (db, catalog, client)
}

fn create_request(sku: &str) -> pb::CreateProductRequest {
    pb::CreateProductRequest {
        sku: sku.into(),
        name: "Brass Compass".into(),
        description: "A compass for tests.".into(),
        price: Some(types::Money {
            minor_units: 4500,
            currency_code: "USD".into(),
        }),
        categories: vec!["outdoor".into()],
        image_path: "/static/img/products/brass-compass.jpg".into(),
    }
}

#[tokio::test]
async fn bad_arguments_are_invalid_argument_and_unknown_ids_not_found() {
    let (_db, _catalog, mut client) = seeded().await;
    let too_big = client
        .list_products(pb::ListProductsRequest {
            page_size: 101,
            ..Default::default()
        })
        .await;
    assert_eq!(too_big.unwrap_err().code(), Code::InvalidArgument);
    let bad_token = client
        .list_products(pb::ListProductsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(bad_token.unwrap_err().code(), Code::InvalidArgument);
    let bad_id = client
        .get_product(pb::GetProductRequest { id: "42".into() })
        .await;
    assert_eq!(bad_id.unwrap_err().code(), Code::InvalidArgument);
    let unknown = client
        .get_product(pb::GetProductRequest {
            id: "01920000-0000-7000-8000-000000000000".into(),
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    let empty_search = client
        .search_products(pb::SearchProductsRequest::default())
        .await;
    assert_eq!(empty_search.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test]
async fn admin_writes_create_update_and_delete() {
    let (_db, _catalog, mut client) = seeded().await;
    let created = client
        .create_product(request_as(&admin(), create_request("TST-1000")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.categories, ["outdoor"]);
    assert!(created.create_time.is_some());

    let duplicate = client
        .create_product(request_as(&admin(), create_request("TST-1000")))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let mut unknown_category = create_request("TST-1001");
    unknown_category.categories = vec!["not-a-category".into()];
    let err = client
        .create_product(request_as(&admin(), unknown_category))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("not-a-category"),
        "{}",
        err.message()
    );

    let mut negative = create_request("TST-1002");
    negative.price = Some(types::Money {
        minor_units: -1,
        currency_code: "USD".into(),
    });
    assert_eq!(
        client
            .create_product(request_as(&admin(), negative))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let updated = client
        .update_product(request_as(
            &admin(),
            pb::UpdateProductRequest {
                id: created.id.clone(),
                price: Some(types::Money {
                    minor_units: 3900,
                    currency_code: "USD".into(),
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.price.unwrap().minor_units, 3900);
    assert_eq!(updated.name, created.name);

    let nothing = client
        .update_product(request_as(
            &admin(),
            pb::UpdateProductRequest {
                id: created.id.clone(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(nothing.unwrap_err().code(), Code::InvalidArgument);

    client
        .delete_product(request_as(
            &admin(),
            pb::DeleteProductRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap();
    let gone = client
        .get_product(pb::GetProductRequest { id: created.id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn writes_need_the_admin_role() {
    let (_db, _catalog, mut client) = seeded().await;
    let anonymous = client
        .create_product(create_request("TST-2000"))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let as_customer = client
        .create_product(request_as(&customer(), create_request("TST-2000")))
        .await
        .unwrap_err();
    assert_eq!(as_customer.code(), Code::PermissionDenied);
    let delete = pb::DeleteProductRequest {
        id: "01920000-0000-7000-8000-000000000000".into(),
    };
    assert_eq!(
        client
            .delete_product(request_as(&customer(), delete))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn admin_port_reports_ready_and_counts_calls() {
    let (_db, catalog, mut client) = seeded().await;
    client
        .list_categories(pb::ListCategoriesRequest {})
        .await
        .unwrap();
    let _ = client
        .get_product(pb::GetProductRequest { id: "bad".into() })
        .await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(catalog.admin_url("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(catalog.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = http
        .get(catalog.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"grpc_server_requests_total{service="catalog",method="/emporium.catalog.v1.CatalogService/ListCategories",code="OK"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"method="/emporium.catalog.v1.CatalogService/GetProduct",code="INVALID_ARGUMENT"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn stopping_makes_readiness_false_and_ends_the_server() {
    let (_db, catalog, _client) = seeded().await;
    let stopped = catalog.stop().await.unwrap();
    assert_eq!(stopped, emporium_chassis::lifecycle::Stopped::Drained);
}
