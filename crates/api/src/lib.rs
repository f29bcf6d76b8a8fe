//! Generated protobuf and gRPC code for Emporium's internal APIs.
//!
//! One module per `proto/` package. Services depend on this crate only; none
//! links another service's crate. Generated types stay at the transport edge:
//! every service maps them to its own domain types.

/// Encoded `FileDescriptorSet` of every package, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/emporium_descriptor.bin"));

pub mod types {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.types.v1");
    }
}

pub mod catalog {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.catalog.v1");
    }
}

pub mod accounts {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.accounts.v1");
    }
}

pub mod cart {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.cart.v1");
    }
}

pub mod currency {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.currency.v1");
    }
}

pub mod inventory {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.inventory.v1");
    }
}

pub mod payment {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.payment.v1");
    }
}

pub mod shipping {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.shipping.v1");
    }
}

pub mod checkout {
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("emporium.checkout.v1");
    }
}
