//! The accounts' storage contract, run against SQLite always and PostgreSQL
//! when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test functions, one
//! instance per backend.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::future::Future;

use emporium_accounts::AccountsError;
use emporium_accounts::domain::{self, Email, NewUser, PasswordHash, Role, User, UserId, UserName};
use emporium_accounts::store::Store;
use emporium_testkit::{Backend, TestDb};

/// Runs `test` on a fresh, migrated store of `backend`; skips (with a
/// message) when the backend is not configured.
async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await.expect("test database") else {
        return;
    };
    let store = Store::connect(db.url(), 8).expect("connect");
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    store.close().await;
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    created_users_read_back_exactly_by_id_and_email,
    emails_are_unique_whatever_their_case,
    ten_concurrent_sign_ups_of_one_email_store_exactly_one_user,
    unknown_users_are_not_found,
    roles_are_granted_and_revoked_by_email_and_say_whether_they_changed,
);

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        user: User {
            id: UserId::generate(),
            email: Email::parse(email).unwrap(),
            name: UserName::parse("Ada Lovelace").unwrap(),
            role,
            created_at: domain::now(),
        },
        // The store keeps whatever hash it is given; hashing is tested elsewhere.
        password_hash: PasswordHash::new("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
    }
}

async fn created_users_read_back_exactly_by_id_and_email(store: Store) {
    let new = new_user("ada@example.com", Role::Admin);
    let created = store.create_user(&new).await.unwrap();
    assert_eq!(created, new.user);
    assert_eq!(
        store.get_user(created.id).await.unwrap(),
        created,
        "timestamps read back exactly"
    );
    let (found, hash) = store
        .find_credentials(&Email::parse("ADA@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created);
    assert_eq!(hash, new.password_hash);
    assert!(
        store
            .find_credentials(&Email::parse("nobody@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn emails_are_unique_whatever_their_case(store: Store) {
    store
        .create_user(&new_user("grace@example.com", Role::Customer))
        .await
        .unwrap();
    let again = store
        .create_user(&new_user("Grace@EXAMPLE.com", Role::Customer))
        .await;
    assert!(matches!(again, Err(AccountsError::EmailTaken)), "{again:?}");
}

async fn ten_concurrent_sign_ups_of_one_email_store_exactly_one_user(store: Store) {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_user(&new_user("race@example.com", Role::Customer))
                    .await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => created.push(user),
            Err(AccountsError::EmailTaken) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one sign-up wins");
    let (found, _) = store
        .find_credentials(&Email::parse("race@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created[0]);
}

async fn unknown_users_are_not_found(store: Store) {
    let id = UserId::generate();
    let result = store.get_user(id).await;
    assert!(
        matches!(result, Err(AccountsError::UserNotFound(ref got)) if *got == id.to_string()),
        "{result:?}"
    );
}

async fn roles_are_granted_and_revoked_by_email_and_say_whether_they_changed(store: Store) {
    let ada = store
        .create_user(&new_user("ada@example.com", Role::Customer))
        .await
        .unwrap();
    let bob = store
        .create_user(&new_user("bob@example.com", Role::Customer))
        .await
        .unwrap();
    let email = Email::parse("ADA@example.com").unwrap();
    assert!(store.set_role(&email, Role::Admin).await.unwrap());
    assert_eq!(store.get_user(ada.id).await.unwrap().role, Role::Admin);
    // Granting again changes nothing, and says so; nobody else changed.
    assert!(!store.set_role(&email, Role::Admin).await.unwrap());
    assert_eq!(store.get_user(bob.id).await.unwrap().role, Role::Customer);
    assert!(store.set_role(&email, Role::Customer).await.unwrap());
    assert_eq!(store.get_user(ada.id).await.unwrap().role, Role::Customer);
    let nobody = Email::parse("nobody@example.com").unwrap();
    let err = store.set_role(&nobody, Role::Admin).await.unwrap_err();
    assert!(
        matches!(err, AccountsError::UserNotFound(ref who) if who == "nobody@example.com"),
        "{err}"
    );
}
