//! The gRPC API (`emporium.catalog.v1.CatalogService`): maps requests to
//! domain values, calls the store, maps results and errors back.

use emporium_api::catalog::v1 as pb;
use emporium_api::catalog::v1::catalog_service_server::CatalogService;
use emporium_api::types::v1 as types;
use emporium_chassis::identity::Identity;
use tonic::{Request, Response, Status};

use crate::domain::{
    self, Currency, Cursor, Description, ImagePath, Money, NewProduct, PageSize, Product,
    ProductId, ProductName, ProductPatch, ProductQuery, SearchText, Sku,
};
use crate::error::CatalogError;
use crate::store::Store;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    store: Store,
}

impl CatalogApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> pb::catalog_service_server::CatalogServiceServer<Self> {
        pb::catalog_service_server::CatalogServiceServer::new(self)
            // Requests here are small; anything bigger is a mistake or an attack.
            .max_decoding_message_size(1024 * 1024)
    }
}

fn invalid(e: domain::Invalid) -> Status {
    CatalogError::from(e).into()
}

fn optional<T>(
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, domain::Invalid>,
) -> Result<Option<T>, Status> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse(value).map(Some).map_err(invalid)
    }
}

fn money(field: &str, price: Option<&types::Money>) -> Result<Money, domain::Invalid> {
    let price = price.ok_or_else(|| domain::Invalid::new(field, "is required"))?;
    let currency = Currency::parse(&price.currency_code)
        .map_err(|e| domain::Invalid::from(e).within(field))?;
    Money::new(price.minor_units, currency).map_err(|e| e.within(field))
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn to_pb(p: Product) -> pb::Product {
    pb::Product {
        id: p.id.to_string(),
        sku: p.sku.to_string(),
        name: p.name.to_string(),
        description: p.description.to_string(),
        price: Some(types::Money {
            minor_units: p.price.minor(),
            currency_code: p.price.currency().to_string(),
        }),
        categories: p.categories.iter().map(ToString::to_string).collect(),
        image_path: p.image.to_string(),
        create_time: Some(timestamp(p.created_at)),
        update_time: Some(timestamp(p.updated_at)),
    }
}

fn page_response(page: domain::Page) -> pb::ListProductsResponse {
    pb::ListProductsResponse {
        products: page.products.into_iter().map(to_pb).collect(),
        next_page_token: page.next.map(|c| c.encode()).unwrap_or_default(),
    }
}

fn query(
    page_size: u32,
    page_token: &str,
    category: &str,
    text: Option<SearchText>,
) -> Result<ProductQuery, Status> {
    Ok(ProductQuery {
        category: optional(category, domain::CategorySlug::parse)?,
        text,
        after: optional(page_token, Cursor::decode)?,
        size: PageSize::new(page_size).map_err(invalid)?,
    })
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let r = request.into_inner();
        let q = query(r.page_size, &r.page_token, &r.category, None)?;
        Ok(Response::new(page_response(
            self.store.list_products(&q).await?,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn search_products(
        &self,
        request: Request<pb::SearchProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let r = request.into_inner();
        let text = SearchText::parse(&r.query).map_err(invalid)?;
        let q = query(r.page_size, &r.page_token, &r.category, Some(text))?;
        Ok(Response::new(page_response(
            self.store.list_products(&q).await?,
        )))
    }

    #[tracing::instrument(skip_all, fields(product_id = %request.get_ref().id))]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let id = ProductId::parse(&request.get_ref().id).map_err(invalid)?;
        Ok(Response::new(to_pb(self.store.get_product(id).await?)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_categories(
        &self,
        _request: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let categories = self
            .store
            .list_categories()
            .await?
            .into_iter()
            .map(|s| pb::Category {
                slug: s.category.slug.to_string(),
                name: s.category.name.to_string(),
                description: s.category.description.to_string(),
                product_count: s.product_count,
            })
            .collect();
        Ok(Response::new(pb::ListCategoriesResponse { categories }))
    }

    #[tracing::instrument(skip_all, fields(sku = %request.get_ref().sku))]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let admin = Identity::require_admin(&request)?;
        let r = request.into_inner();
        let new = NewProduct {
            sku: Sku::parse(&r.sku).map_err(invalid)?,
            name: ProductName::parse(&r.name).map_err(invalid)?,
            description: Description::parse(&r.description).map_err(invalid)?,
            price: money("price", r.price.as_ref()).map_err(invalid)?,
            categories: domain::categories("categories", &r.categories).map_err(invalid)?,
            image: ImagePath::parse(&r.image_path).map_err(invalid)?,
        };
        let product = self.store.create_product(&new).await?;
        tracing::info!(product_id = %product.id, user_id = %admin.user_id, "product created");
        Ok(Response::new(to_pb(product)))
    }

    #[tracing::instrument(skip_all, fields(product_id = %request.get_ref().id))]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let admin = Identity::require_admin(&request)?;
        let r = request.into_inner();
        let id = ProductId::parse(&r.id).map_err(invalid)?;
        let patch = ProductPatch {
            name: r
                .name
                .as_deref()
                .map(ProductName::parse)
                .transpose()
                .map_err(invalid)?,
            description: r
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()
                .map_err(invalid)?,
            price: r
                .price
                .as_ref()
                .map(|p| money("price", Some(p)))
                .transpose()
                .map_err(invalid)?,
            categories: if r.update_categories {
                Some(domain::categories("categories", &r.categories).map_err(invalid)?)
            } else if !r.categories.is_empty() {
                return Err(invalid(domain::Invalid::new(
                    "categories",
                    "set update_categories to replace them",
                )));
            } else {
                None
            },
            image: r
                .image_path
                .as_deref()
                .map(ImagePath::parse)
                .transpose()
                .map_err(invalid)?,
        };
        if patch.is_empty() {
            return Err(invalid(domain::Invalid::new(
                "update",
                "names no field to change",
            )));
        }
        let product = self.store.update_product(id, &patch).await?;
        tracing::info!(user_id = %admin.user_id, "product updated");
        Ok(Response::new(to_pb(product)))
    }

    #[tracing::instrument(skip_all, fields(product_id = %request.get_ref().id))]
    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> Result<Response<pb::DeleteProductResponse>, Status> {
        let admin = Identity::require_admin(&request)?;
        let id = ProductId::parse(&request.get_ref().id).map_err(invalid)?;
        self.store.delete_product(id).await?;
        tracing::info!(user_id = %admin.user_id, "product deleted");
        Ok(Response::new(pb::DeleteProductResponse {}))
    }
}
