//! Notification's integration tests, one binary: the storage contract on
//! every database backend, the running service over the embedded event
//! log, and the SMTP mailer against a local SMTP server.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod end_to_end;
mod smtp;
mod store;
mod support;
