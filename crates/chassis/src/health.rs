//! Liveness and readiness of one service.
//!
//! A service is *live* while its process runs, and *ready* once it has
//! started serving and until it begins to drain. The admin port's `/readyz`
//! and the gRPC health protocol both follow this one value.

use std::sync::Arc;

use tokio::sync::watch;

/// Shared readiness state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<watch::Sender<State>>,
}

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Ready,
    Draining,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(State::Starting)),
        }
    }

    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    pub fn is_ready(&self) -> bool {
        self.state() == State::Ready
    }

    /// Marks the service ready, unless it is already draining.
    pub fn set_ready(&self) {
        self.state.send_if_modified(|s| {
            let change = *s == State::Starting;
            if change {
                *s = State::Ready;
            }
            change
        });
    }

    /// Readiness goes false for good: the service is shutting down.
    pub fn set_draining(&self) {
        self.state.send_replace(State::Draining);
    }

    /// Follows state changes (for the gRPC health reporter).
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }
}
