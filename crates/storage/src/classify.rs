//! What kind of failure a `sqlx` error is, the same way in every service:
//! each service turns these answers into its own error variants.

/// The database could not be reached or gave no connection in time (pool
/// timeout or closed, I/O, TLS), the conversation with it broke off (a
/// protocol error: e.g. a proxy in front of a failing-over server accepts the
/// connection and closes it, which the PostgreSQL driver reports as an
/// unexpected answer to its TLS request — nothing a request's data can
/// cause), or the server refused or ended the session because it is going
/// away or not ready: PostgreSQL class 08 (connection exception),
/// 57P01–57P03 (administrator or crash shutdown, cannot connect now) and
/// 53300 (too many connections). Worth retrying later, not a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean "the server is not there for you now".
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.len() == 5
        && (code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300"))
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

#[cfg(test)]
mod tests {
    use super::is_unavailable_sqlstate;

    #[test]
    fn failover_sqlstates_are_unavailable_and_rule_violations_are_not() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "53300"] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        // unique violation, check violation, serialization failure, SQLite's
        // small numeric codes
        for code in ["23505", "23514", "40001", "5", "08"] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
    }
}
