//! A switch that makes a store answer as if its database were unreachable.
//!
//! For tests of what callers and event consumers do while a database is
//! down, where nothing can be cut from outside: an embedded SQLite file has
//! no connection to break (PostgreSQL tests cut a real TCP connection
//! instead, see the test kit's `TcpProxy`). While the switch is on, every
//! call of a store that checks it fails with `sqlx::Error::PoolTimedOut` —
//! what a pool says when the server does not answer — so the store's
//! classification ([`crate::is_unavailable`]) is the one a real outage
//! meets. It is off unless a test turns it on, and costs one atomic load
//! per call. Nothing in configuration can turn it on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cheap to clone; clones share the switch.
#[derive(Debug, Clone, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    /// From now on the database is "unreachable".
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// The database is back.
    pub fn end(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(PoolTimedOut)` while the outage lasts.
    pub fn check(&self) -> Result<(), sqlx::Error> {
        if self.is_on() {
            Err(sqlx::Error::PoolTimedOut)
        } else {
            Ok(())
        }
    }
}
