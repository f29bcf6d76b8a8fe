//! The accounts' gRPC API over a real socket: sign-up rules, sign-in and the
//! tokens it issues (checked with the published JWKS), roles, and GetMe.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use emporium_api::accounts::v1 as pb;
use emporium_api::accounts::v1::accounts_service_client::AccountsServiceClient;
use emporium_chassis::identity::{Identity, Role};
use emporium_chassis::jwt::{Jwks, Verifier};
use emporium_testkit::accounts::{spawn_accounts, spawn_accounts_with};
use emporium_testkit::{Backend, Running, TestDb, customer, request_as, table};
use tonic::Code;
use tonic::transport::Channel;

async fn started(
    overrides: emporium_chassis::config::Table,
) -> (TestDb, Running, AccountsServiceClient<Channel>) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let accounts = spawn_accounts_with(&db, overrides).await.unwrap();
    let client = AccountsServiceClient::connect(accounts.base_url())
        .await
        .unwrap();
    (db, accounts, client)
}

fn sign_up(email: &str, password: &str) -> pb::SignUpRequest {
    pb::SignUpRequest {
        email: email.into(),
        password: password.into(),
        name: "Ada Lovelace".into(),
    }
}

fn sign_in(email: &str, password: &str) -> pb::SignInRequest {
    pb::SignInRequest {
        email: email.into(),
        password: password.into(),
    }
}

async fn verifier(client: &mut AccountsServiceClient<Channel>) -> Verifier {
    let jwks = client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    let jwks: Jwks = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "OKP");
    Verifier::new(&jwks, "emporium", "emporium-api").unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn signing_in_issues_a_token_the_published_keys_verify() {
    let (_db, _accounts, mut client) = started(Default::default()).await;
    let user = client
        .sign_up(sign_up("  Ada@Example.com ", "correct horse battery"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.role(), pb::Role::Customer);
    assert_eq!(user.id.len(), 36);

    let signed_in = client
        .sign_in(sign_in("ADA@example.com", "correct horse battery"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signed_in.token_type, "Bearer");
    assert_eq!(signed_in.expires_in_seconds, 900);
    assert_eq!(signed_in.user.unwrap(), user);

    let claims = verifier(&mut client)
        .await
        .verify(&signed_in.access_token, now())
        .unwrap();
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.role, "customer");
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(
        claims.identity().unwrap(),
        Identity {
            user_id: user.id.clone(),
            role: Role::Customer,
            email: Some(user.email.clone()),
        }
    );
    // A second sign-in is a different token (its own jti).
    let again = client
        .sign_in(sign_in("ada@example.com", "correct horse battery"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(again.access_token, signed_in.access_token);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_answer() {
    let (_db, _accounts, mut client) = started(Default::default()).await;
    client
        .sign_up(sign_up("grace@example.com", "a long passphrase"))
        .await
        .unwrap();
    let wrong_password = client
        .sign_in(sign_in("grace@example.com", "a long passphrasE"))
        .await
        .unwrap_err();
    let unknown_email = client
        .sign_in(sign_in("nobody@example.com", "a long passphrase"))
        .await
        .unwrap_err();
    let malformed = client
        .sign_in(sign_in("not an email", "short"))
        .await
        .unwrap_err();
    for status in [&wrong_password, &unknown_email, &malformed] {
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), wrong_password.message());
    }
    assert!(
        !wrong_password.message().contains("grace"),
        "{}",
        wrong_password.message()
    );
}

#[tokio::test]
async fn sign_up_makes_customers_and_a_granted_role_shows_from_the_next_sign_in() {
    let (db, _accounts, mut client) = started(Default::default()).await;
    let boss = client
        .sign_up(sign_up("boss@example.com", "the boss password"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(boss.role(), pb::Role::Customer);
    let reader = client.clone();
    let role_in_token = |token: String| {
        let mut client = reader.clone();
        async move {
            verifier(&mut client)
                .await
                .verify(&token, now())
                .unwrap()
                .role
        }
    };
    let before = client
        .sign_in(sign_in("boss@example.com", "the boss password"))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    // The operator's grant (what `emporium accounts grant-admin` runs).
    let store = emporium_accounts::store::Store::connect(db.url(), 1).unwrap();
    let email = emporium_accounts::domain::Email::parse("boss@example.com").unwrap();
    assert!(
        store
            .set_role(&email, emporium_accounts::domain::Role::Admin)
            .await
            .unwrap()
    );
    // A token issued before keeps its role until it expires; the next one has admin.
    assert_eq!(role_in_token(before).await, "customer");
    let after = client
        .sign_in(sign_in("boss@example.com", "the boss password"))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    assert_eq!(role_in_token(after).await, "admin");
    store.close().await;
}

#[tokio::test]
async fn duplicate_emails_are_refused_also_when_signing_up_concurrently() {
    let (_db, _accounts, client) = started(Default::default()).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .sign_up(sign_up(
                        if i % 2 == 0 {
                            "same@example.com"
                        } else {
                            "SAME@example.com"
                        },
                        "same password",
                    ))
                    .await
            })
        })
        .collect();
    let (mut ok, mut taken) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) if status.code() == Code::AlreadyExists => taken += 1,
            Err(status) => panic!("unexpected status: {status:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 9));
    let mut client = client;
    let again = client
        .sign_up(sign_up("same@example.com", "other password"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn bad_sign_ups_are_invalid_arguments() {
    let (_db, _accounts, mut client) = started(Default::default()).await;
    for (email, password, name) in [
        ("no-at-sign", "long enough", "Ada"),
        ("a@b@c", "long enough", "Ada"),
        ("with space@example.com", "long enough", "Ada"),
        ("ada@example.com", "short", "Ada"),
        ("ada@example.com", &"p".repeat(129), "Ada"),
        ("ada@example.com", "long enough", ""),
        ("ada@example.com", "long enough", &"n".repeat(101)),
    ] {
        let status = client
            .sign_up(pb::SignUpRequest {
                email: email.into(),
                password: password.into(),
                name: name.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{email} / {name}: {}",
            status.message()
        );
        assert!(
            !status.message().contains(password) || password.is_empty(),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn get_me_returns_the_caller_and_needs_one() {
    let (_db, _accounts, mut client) = started(Default::default()).await;
    let user = client
        .sign_up(sign_up("me@example.com", "my own password"))
        .await
        .unwrap()
        .into_inner();
    let me = Identity {
        user_id: user.id.clone(),
        role: Role::Customer,
        email: None,
    };
    let got = client
        .get_me(request_as(&me, pb::GetMeRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, user);
    let anonymous = client.get_me(pb::GetMeRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let stranger = client
        .get_me(request_as(&customer(), pb::GetMeRequest {}))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
}

#[tokio::test]
async fn a_key_kept_on_disk_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwt").join("signing-key.pem");
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let mut jwks = Vec::new();
    for _ in 0..2 {
        let mut settings = emporium_testkit::accounts::fast_password_hashing();
        emporium_chassis::config::merge(
            &mut settings,
            table(&[("signing_key_path", path.to_str().unwrap())]),
        );
        let mut config: emporium_accounts::AccountsConfig =
            emporium_testkit::test_config(emporium_accounts::AccountsConfig::load, settings)
                .unwrap();
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.database.url = Some(emporium_chassis::config::Secret::new(db.url()));
        let server = emporium_accounts::AccountsServer::build(config)
            .await
            .unwrap();
        jwks.push(server.key_id().to_owned());
    }
    assert!(path.exists());
    assert_eq!(jwks[0], jwks[1], "the same key after a restart");
}

#[tokio::test]
async fn stopping_drains() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let accounts = spawn_accounts(&db).await.unwrap();
    assert_eq!(
        accounts.stop().await.unwrap(),
        emporium_chassis::lifecycle::Stopped::Drained
    );
}

#[tokio::test]
async fn sign_ins_beyond_the_hash_queue_are_refused_at_once() {
    // One hash at a time, one waiting: of six simultaneous sign-ups, two
    // are served and four are told to come back, without waiting.
    let mut hashing = emporium_chassis::config::Table::new();
    hashing.insert("max_concurrent".into(), 1.into());
    hashing.insert("max_waiting".into(), 1.into());
    hashing.insert("memory_kib".into(), 32_768.into());
    hashing.insert("iterations".into(), 3.into());
    let mut overrides = emporium_chassis::config::Table::new();
    overrides.insert("password_hashing".into(), hashing.into());
    let (_db, _accounts, client) = started(overrides).await;
    let started = std::time::Instant::now();
    let calls = (0..6).map(|i| {
        let mut client = client.clone();
        async move {
            let result = client
                .sign_up(sign_up(
                    &format!("busy{i}@example.com"),
                    "correct horse battery",
                ))
                .await;
            (result, started.elapsed())
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let served = results.iter().filter(|(r, _)| r.is_ok()).count();
    let refused: Vec<_> = results
        .iter()
        .filter_map(|(r, took)| r.as_ref().err().map(|s| (s, took)))
        .collect();
    assert_eq!(served, 2, "{results:?}");
    assert_eq!(refused.len(), 4, "{results:?}");
    let slowest_served = results
        .iter()
        .filter(|(r, _)| r.is_ok())
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    for (status, took) in refused {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("try again"), "{status:?}");
        assert!(
            *took < slowest_served / 2,
            "refused after {took:?}, served after {slowest_served:?}"
        );
    }
}
