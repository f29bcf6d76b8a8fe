//! What kind of failure a `sqlx` error is, the same way in every service:
//! each service turns these answers into its own error variants.

/// The database could not be reached or gave no connection in time (pool
/// timeout or closed, I/O, TLS): worth retrying later, not a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

/// A unique key refused the write (on either engine).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The database was too busy for the transaction, which may succeed if run
/// again: PostgreSQL 40001/40P01 (serialization failure, deadlock; its
/// SQLSTATEs have five characters), or SQLITE_BUSY / SQLITE_LOCKED with any
/// extended code (SQLite's codes are small numbers).
pub fn is_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match db.code().as_deref() {
        Some("40001" | "40P01") => true,
        Some(code) if code.len() < 5 => {
            code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}
