//! Every statement the accounts service runs, written once and instantiated
//! for SQLite and PostgreSQL by [`backend!`]. Only portable SQL appears here.

use super::UserRow;

/// A user row with its password hash (statements must be static strings,
/// so they are put together with `concat!`).
macro_rules! select_user {
    () => {
        "SELECT id, email, name, role, created_at, password_hash FROM users"
    };
}

const BY_EMAIL: &str = concat!(select_user!(), " WHERE email = $1");
const BY_ID: &str = concat!(select_user!(), " WHERE id = $1");

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::Pool;

            use super::*;
            use crate::domain::{Email, NewUser, Role, UserId};
            use crate::error::AccountsError;
            use crate::store::on_unique_violation;

            /// One statement, so no transaction is needed: the insert
            /// either lands whole or fails on the unique email.
            pub async fn create_user(pool: &Pool<$db>, new: &NewUser) -> Result<(), AccountsError> {
                let user = &new.user;
                sqlx::query(
                    "INSERT INTO users (id, email, name, password_hash, role, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id.to_string())
                .bind(user.email.as_str())
                .bind(user.name.as_str())
                .bind(new.password_hash.as_str())
                .bind(user.role.as_str())
                .bind(user.created_at)
                .execute(pool)
                .await
                .map_err(on_unique_violation)?;
                Ok(())
            }

            pub async fn find_by_email(
                pool: &Pool<$db>,
                email: &Email,
            ) -> Result<Option<UserRow>, AccountsError> {
                Ok(sqlx::query_as(BY_EMAIL)
                    .bind(email.as_str())
                    .fetch_optional(pool)
                    .await?)
            }

            /// True when a row changed (the user exists and had another role).
            pub async fn set_role(
                pool: &Pool<$db>,
                email: &Email,
                role: Role,
            ) -> Result<bool, AccountsError> {
                let done =
                    sqlx::query("UPDATE users SET role = $1 WHERE email = $2 AND role <> $1")
                        .bind(role.as_str())
                        .bind(email.as_str())
                        .execute(pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            pub async fn get_user(
                pool: &Pool<$db>,
                id: UserId,
            ) -> Result<Option<UserRow>, AccountsError> {
                Ok(sqlx::query_as(BY_ID)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?)
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);
