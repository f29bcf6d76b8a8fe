//! The catalog's storage contract, run against SQLite always and PostgreSQL
//! when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test functions, one
//! instance per backend.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::HashSet;
use std::future::Future;

use emporium_catalog::CatalogError;
use emporium_catalog::domain::{
    CategorySlug, Currency, Description, ImagePath, Money, NewProduct, PageSize, ProductId,
    ProductName, ProductPatch, ProductQuery, SearchText, Sku,
};
use emporium_catalog::store::Store;
use emporium_testkit::{Backend, SEED_CATALOG, TestDb};

/// Runs `test` on a fresh, migrated store of `backend`, with the seed catalog
/// loaded; skips (with a message) when the backend is not configured.
async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await.expect("test database") else {
        return;
    };
    emporium_testkit::seed_catalog(&db, SEED_CATALOG)
        .await
        .expect("seed");
    let store = Store::connect(db.url(), 4).expect("connect");
    test(store.clone()).await;
    store.close().await;
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    pages_cover_every_product_once_in_id_order,
    category_filter_returns_only_that_category,
    search_is_case_insensitive_and_treats_wildcards_literally,
    get_returns_the_product_with_its_categories,
    unknown_product_is_not_found,
    create_stores_every_field_and_rejects_a_taken_sku,
    create_with_an_unknown_category_writes_nothing,
    update_changes_only_named_fields,
    update_and_delete_of_unknown_products_are_not_found,
    delete_removes_the_product_and_its_category_links,
    categories_are_listed_with_product_counts,
    import_is_idempotent_and_applies_changes,
    failed_import_writes_nothing,
);

fn query(size: u32) -> ProductQuery {
    ProductQuery {
        category: None,
        text: None,
        after: None,
        size: PageSize::new(size).unwrap(),
    }
}

fn slug(s: &str) -> CategorySlug {
    CategorySlug::parse(s).unwrap()
}

fn new_product(sku: &str, categories: &[&str]) -> NewProduct {
    NewProduct {
        sku: Sku::parse(sku).unwrap(),
        name: ProductName::parse("Test Lantern").unwrap(),
        description: Description::parse("A lantern used by tests.").unwrap(),
        price: Money::new(1999, Currency::parse("USD").unwrap()).unwrap(),
        categories: emporium_catalog::domain::categories("categories", categories).unwrap(),
        image: ImagePath::parse("/static/img/products/test-lantern.jpg").unwrap(),
    }
}

async fn all_ids(store: &Store, mut q: ProductQuery) -> Vec<ProductId> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = store.list_products(&q).await.unwrap();
        assert!(page.products.len() <= q.size.get() as usize);
        ids.extend(page.products.iter().map(|p| p.id));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return ids,
        }
    }
    panic!("pagination did not end");
}

async fn pages_cover_every_product_once_in_id_order(store: Store) {
    let total = store.count_products().await.unwrap();
    assert_eq!(total, 30);
    let ids = all_ids(&store, query(7)).await;
    assert_eq!(ids.len() as u64, total);
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a product appeared twice");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "pages are not in id order");
    // The last page is exactly full: no cursor after it.
    let page = store.list_products(&query(30)).await.unwrap();
    assert_eq!(page.products.len(), 30);
    assert!(page.next.is_none());
}

async fn category_filter_returns_only_that_category(store: Store) {
    let mut q = query(3);
    q.category = Some(slug("outdoor"));
    let mut seen = 0;
    for id in all_ids(&store, q).await {
        let p = store.get_product(id).await.unwrap();
        assert!(
            p.categories.contains(&slug("outdoor")),
            "{:?}",
            p.categories
        );
        seen += 1;
    }
    let expected = store
        .list_categories()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.category.slug == slug("outdoor"))
        .unwrap();
    assert_eq!(seen, expected.product_count);
    let mut none = query(10);
    none.category = Some(slug("no-such-category"));
    assert!(
        store
            .list_products(&none)
            .await
            .unwrap()
            .products
            .is_empty()
    );
}

async fn search_is_case_insensitive_and_treats_wildcards_literally(store: Store) {
    let search = |text: &str| {
        let mut q = query(100);
        q.text = Some(SearchText::parse(text).unwrap());
        q
    };
    let lower = store.list_products(&search("wool")).await.unwrap().products;
    let upper = store.list_products(&search("WOOL")).await.unwrap().products;
    assert!(lower.len() >= 3, "{} wool products", lower.len());
    assert_eq!(lower, upper);
    for p in &lower {
        let haystack = format!("{} {} {}", p.name, p.description, p.sku).to_lowercase();
        assert!(haystack.contains("wool"), "{}", p.name);
    }
    // `%` and `_` match themselves, not "anything".
    let percent = store.list_products(&search("100%")).await.unwrap().products;
    assert!(!percent.is_empty());
    for p in &percent {
        assert!(p.description.as_str().contains("100%"), "{}", p.name);
    }
    assert!(
        store
            .list_products(&search("1_0"))
            .await
            .unwrap()
            .products
            .is_empty()
    );
    assert!(
        store
            .list_products(&search("%%%"))
            .await
            .unwrap()
            .products
            .is_empty()
    );
    let by_sku = store
        .list_products(&search("kit-0001"))
        .await
        .unwrap()
        .products;
    assert_eq!(by_sku.len(), 1);
    let mut in_category = search("wool");
    in_category.category = Some(slug("apparel"));
    let narrowed = store.list_products(&in_category).await.unwrap().products;
    assert!(!narrowed.is_empty() && narrowed.len() < lower.len());
}

async fn get_returns_the_product_with_its_categories(store: Store) {
    let page = store.list_products(&query(100)).await.unwrap();
    let multi = page
        .products
        .iter()
        .find(|p| p.categories.len() == 2)
        .expect("a product in two categories");
    let got = store.get_product(multi.id).await.unwrap();
    assert_eq!(&got, multi);
    let mut sorted = got.categories.clone();
    sorted.sort();
    assert_eq!(got.categories, sorted);
}

async fn unknown_product_is_not_found(store: Store) {
    let id = ProductId::generate();
    assert!(
        matches!(store.get_product(id).await, Err(CatalogError::ProductNotFound(got)) if got == id)
    );
}

async fn create_stores_every_field_and_rejects_a_taken_sku(store: Store) {
    let new = new_product("TST-0001", &["outdoor", "kitchen"]);
    let created = store.create_product(&new).await.unwrap();
    assert_eq!(created.sku, new.sku);
    assert_eq!(created.price, new.price);
    assert_eq!(created.categories, vec![slug("kitchen"), slug("outdoor")]);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get_product(created.id).await.unwrap(),
        created,
        "timestamps and fields read back exactly"
    );
    let again = store.create_product(&new).await;
    assert!(matches!(again, Err(CatalogError::SkuTaken(_))), "{again:?}");
    assert_eq!(store.count_products().await.unwrap(), 31);
}

async fn create_with_an_unknown_category_writes_nothing(store: Store) {
    let result = store
        .create_product(&new_product("TST-0002", &["kitchen", "zzz-unknown"]))
        .await;
    assert!(
        matches!(result, Err(CatalogError::UnknownCategory(ref s)) if s.as_str() == "zzz-unknown"),
        "{result:?}"
    );
    assert_eq!(
        store.count_products().await.unwrap(),
        30,
        "the product row was rolled back"
    );
}

async fn update_changes_only_named_fields(store: Store) {
    let created = store
        .create_product(&new_product("TST-0003", &["kitchen"]))
        .await
        .unwrap();
    let patch = ProductPatch {
        name: Some(ProductName::parse("Renamed Lantern").unwrap()),
        categories: Some(vec![slug("outdoor")]),
        ..ProductPatch::default()
    };
    let updated = store.update_product(created.id, &patch).await.unwrap();
    assert_eq!(updated.name.as_str(), "Renamed Lantern");
    assert_eq!(updated.description, created.description);
    assert_eq!(updated.price, created.price);
    assert_eq!(updated.categories, vec![slug("outdoor")]);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    let bad = ProductPatch {
        categories: Some(vec![slug("nope-nope")]),
        ..ProductPatch::default()
    };
    assert!(matches!(
        store.update_product(created.id, &bad).await,
        Err(CatalogError::UnknownCategory(_))
    ));
    assert_eq!(
        store.get_product(created.id).await.unwrap(),
        updated,
        "a failed update changed nothing"
    );
}

async fn update_and_delete_of_unknown_products_are_not_found(store: Store) {
    let id = ProductId::generate();
    let patch = ProductPatch {
        name: Some(ProductName::parse("x").unwrap()),
        ..ProductPatch::default()
    };
    assert!(matches!(
        store.update_product(id, &patch).await,
        Err(CatalogError::ProductNotFound(_))
    ));
    assert!(matches!(
        store.delete_product(id).await,
        Err(CatalogError::ProductNotFound(_))
    ));
}

async fn delete_removes_the_product_and_its_category_links(store: Store) {
    let before = store.list_categories().await.unwrap();
    let created = store
        .create_product(&new_product("TST-0004", &["books"]))
        .await
        .unwrap();
    store.delete_product(created.id).await.unwrap();
    assert!(matches!(
        store.get_product(created.id).await,
        Err(CatalogError::ProductNotFound(_))
    ));
    assert_eq!(store.list_categories().await.unwrap(), before);
}

async fn categories_are_listed_with_product_counts(store: Store) {
    let categories = store.list_categories().await.unwrap();
    assert_eq!(categories.len(), 6);
    let slugs: Vec<_> = categories
        .iter()
        .map(|c| c.category.slug.as_str().to_owned())
        .collect();
    let mut sorted = slugs.clone();
    sorted.sort();
    assert_eq!(slugs, sorted);
    let links: u32 = categories.iter().map(|c| c.product_count).sum();
    assert!(
        links > 30,
        "some products are in two categories ({links} links)"
    );
}

async fn import_is_idempotent_and_applies_changes(store: Store) {
    let data = emporium_catalog::import::parse(SEED_CATALOG).unwrap();
    let first_ids = all_ids(&store, query(100)).await;
    let report = store
        .import(&data.categories, &data.products)
        .await
        .unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (0, 0, 30)
    );
    let mut changed = data.products.clone();
    changed[0].price =
        Money::new(changed[0].price.minor() + 100, changed[0].price.currency()).unwrap();
    let report = store.import(&data.categories, &changed).await.unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (0, 1, 29)
    );
    assert_eq!(
        all_ids(&store, query(100)).await,
        first_ids,
        "ids are kept across imports"
    );
}

async fn failed_import_writes_nothing(store: Store) {
    let data = emporium_catalog::import::parse(SEED_CATALOG).unwrap();
    let mut products = data.products.clone();
    products[0].name = ProductName::parse("Changed Before The Failure").unwrap();
    products.push(new_product("TST-0005", &["kitchen"]));
    products.push(new_product("TST-0006", &["missing-category"]));
    let result = store.import(&data.categories, &products).await;
    assert!(
        matches!(result, Err(CatalogError::UnknownCategory(_))),
        "{result:?}"
    );
    assert_eq!(store.count_products().await.unwrap(), 30);
    let mut q = query(1);
    q.text = Some(SearchText::parse("Changed Before The Failure").unwrap());
    assert!(store.list_products(&q).await.unwrap().products.is_empty());
}
