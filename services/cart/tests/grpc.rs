//! The cart's gRPC API over a real socket, with a real catalog behind it:
//! identity, product checks, bounds, and what happens when the catalog is
//! gone. Runs on the SQLite store, on Redis too when `EMPORIUM_TEST_REDIS_URL`
//! is set, and on Redis over TLS when `EMPORIUM_TEST_REDIS_TLS_URL` is.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use emporium_api::cart::v1 as pb;
use emporium_api::cart::v1::cart_service_client::CartServiceClient;
use emporium_api::catalog::v1 as catalog_pb;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_testkit::cart::{CartBackend, spawn_cart};
use emporium_testkit::{
    Backend, Running, SEED_CATALOG, TestDb, customer, request_as, seed_catalog, spawn_catalog,
};
use tonic::Code;
use tonic::transport::Channel;

/// A seeded catalog, a cart in front of it, and two products (sorted by
/// id). Everything stops when it is dropped, so tests keep it whole.
struct Setup {
    _catalog_db: TestDb,
    _cart_db: TestDb,
    catalog: Running,
    _cart: Running,
    client: CartServiceClient<Channel>,
    products: Vec<catalog_pb::Product>,
}

#[derive(Debug, Clone, Copy)]
enum Store {
    Sqlite,
    Redis,
    RedisTls,
}

async fn setup(store: Store) -> Option<Setup> {
    let catalog_db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    seed_catalog(&catalog_db, SEED_CATALOG).await.unwrap();
    let catalog = spawn_catalog(&catalog_db).await.unwrap();
    let cart_db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let backend = match store {
        Store::Sqlite => CartBackend::Sqlite(&cart_db),
        Store::Redis => CartBackend::redis()?,
        Store::RedisTls => CartBackend::redis_tls()?,
    };
    let cart = spawn_cart(backend, &catalog.base_url()).await.unwrap();
    let client = CartServiceClient::connect(cart.base_url()).await.unwrap();
    let mut products = CatalogServiceClient::connect(catalog.base_url())
        .await
        .unwrap()
        .list_products(catalog_pb::ListProductsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .products;
    products.sort_by(|a, b| a.id.cmp(&b.id));
    Some(Setup {
        _catalog_db: catalog_db,
        _cart_db: cart_db,
        catalog,
        _cart: cart,
        client,
        products,
    })
}

fn add(product_id: &str, quantity: u32) -> pb::AddItemRequest {
    pb::AddItemRequest {
        product_id: product_id.into(),
        quantity,
    }
}

async fn adding_products_stores_their_catalog_name_and_price(store: Store) {
    let Some(setup) = setup(store).await else {
        return;
    };
    let (mut client, products) = (setup.client.clone(), setup.products.clone());
    let me = customer();
    let (a, b) = (&products[0], &products[1]);
    client
        .add_item(request_as(&me, add(&b.id, 1)))
        .await
        .unwrap();
    client
        .add_item(request_as(&me, add(&a.id, 2)))
        .await
        .unwrap();
    let cart = client
        .add_item(request_as(&me, add(&a.id, 1)))
        .await
        .unwrap()
        .into_inner();
    let expected = |p: &catalog_pb::Product, quantity| pb::CartItem {
        product_id: p.id.clone(),
        quantity,
        name: p.name.clone(),
        unit_price: p.price.clone(),
    };
    assert_eq!(cart.items, [expected(a, 3), expected(b, 1)]);
    assert_eq!(
        client
            .get_cart(request_as(&me, pb::GetCartRequest {}))
            .await
            .unwrap()
            .into_inner(),
        cart
    );

    let set = client
        .set_quantity(request_as(
            &me,
            pb::SetQuantityRequest {
                product_id: b.id.clone(),
                quantity: 5,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.items, [expected(a, 3), expected(b, 5)]);
    let zero = client
        .set_quantity(request_as(
            &me,
            pb::SetQuantityRequest {
                product_id: b.id.clone(),
                quantity: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zero.items, [expected(a, 3)], "quantity 0 removes the line");
    let removed = client
        .remove_item(request_as(
            &me,
            pb::RemoveItemRequest {
                product_id: b.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        removed.items,
        [expected(a, 3)],
        "removing a missing line is fine"
    );

    let someone_else = client
        .get_cart(request_as(&customer(), pb::GetCartRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(someone_else.items.is_empty(), "carts are per caller");
    let cleared = client
        .clear_cart(request_as(&me, pb::ClearCartRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.items.is_empty());
}

async fn bad_requests_are_refused_with_the_documented_codes(store: Store) {
    let Some(setup) = setup(store).await else {
        return;
    };
    let (mut client, products) = (setup.client.clone(), setup.products.clone());
    let me = customer();
    let id = products[0].id.clone();

    let anonymous = [
        client.get_cart(pb::GetCartRequest {}).await.unwrap_err(),
        client.add_item(add(&id, 1)).await.unwrap_err(),
        client
            .set_quantity(pb::SetQuantityRequest {
                product_id: id.clone(),
                quantity: 1,
            })
            .await
            .unwrap_err(),
        client
            .remove_item(pb::RemoveItemRequest {
                product_id: id.clone(),
            })
            .await
            .unwrap_err(),
        client
            .clear_cart(pb::ClearCartRequest {})
            .await
            .unwrap_err(),
    ];
    for status in anonymous {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }

    let unknown = "01920000-0000-7000-8000-000000000000";
    let status = client
        .add_item(request_as(&me, add(unknown, 1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains(unknown) && status.message().contains("does not exist"),
        "{}",
        status.message()
    );
    let status = client
        .set_quantity(request_as(
            &me,
            pb::SetQuantityRequest {
                product_id: unknown.into(),
                quantity: 2,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    for (product_id, quantity) in [
        ("42", 1),
        ("01920000-0000-7000-8000-00000000000A", 1),
        (id.as_str(), 0),
        (id.as_str(), 100),
    ] {
        let status = client
            .add_item(request_as(&me, add(product_id, quantity)))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{product_id} × {quantity}: {}",
            status.message()
        );
    }
    client
        .add_item(request_as(&me, add(&id, 60)))
        .await
        .unwrap();
    let over = client
        .add_item(request_as(&me, add(&id, 40)))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::InvalidArgument);
    assert!(over.message().contains("99"), "{}", over.message());
    let cart = client
        .get_cart(request_as(&me, pb::GetCartRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.items[0].quantity, 60, "a refused add changes nothing");
}

async fn a_missing_catalog_makes_adds_unavailable(store: Store) {
    let Some(setup) = setup(store).await else {
        return;
    };
    let (mut client, products, catalog) = (setup.client, setup.products, setup.catalog);
    let me = customer();
    client
        .add_item(request_as(&me, add(&products[0].id, 1)))
        .await
        .unwrap();
    catalog.stop().await.unwrap();
    let status = client
        .add_item(request_as(&me, add(&products[1].id, 1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The cart itself still answers; removing needs no catalog.
    let cart = client
        .get_cart(request_as(&me, pb::GetCartRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.items.len(), 1);
    let cart = client
        .set_quantity(request_as(
            &me,
            pb::SetQuantityRequest {
                product_id: products[0].id.clone(),
                quantity: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(cart.items.is_empty());
}

macro_rules! for_each_store {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(super::Store::Sqlite).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::Store::Redis).await })*
        }
        mod redis_tls {
            $(#[tokio::test] async fn $test() { super::$test(super::Store::RedisTls).await })*
        }
    };
}

for_each_store!(
    adding_products_stores_their_catalog_name_and_price,
    bad_requests_are_refused_with_the_documented_codes,
    a_missing_catalog_makes_adds_unavailable,
);
