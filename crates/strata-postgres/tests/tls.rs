//! TLS to PostgreSQL: the store's pooled connections and its listener all
//! use verified TLS when the URL asks for it; a certificate from the wrong
//! authority and a TLS mode without a root certificate are refused.
//!
//! Uses the server's own certificate (`SHOW ssl_cert_file`, on Debian the
//! self-signed "snakeoil" certificate for `localhost`) as the trusted root.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{database_url, pg_available, raw_client, SchemaGuard};
use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, ReadFilter, StreamId, SubscribeFrom,
};
use strata_postgres::{PgConfig, PgTls, PostgresStore};

/// The server's certificate file when TLS is on and the file is readable;
/// `None` (with a loud message) otherwise.
async fn server_certificate(test: &str) -> Option<PathBuf> {
    let client = raw_client().await;
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let file: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let path = PathBuf::from(file);
    if ssl != "on" || std::fs::metadata(&path).is_err() {
        eprintln!(
            "\n!!! SKIPPED {test}: the test server has ssl={ssl} and certificate {} \
             (readable: {}) — TLS cannot be exercised !!!\n",
            path.display(),
            std::fs::metadata(&path).is_ok()
        );
        return None;
    }
    Some(path)
}

/// The test database's URL with host `localhost` (the name in the
/// certificate) and the given extra parameters.
fn localhost_url(params: &str) -> String {
    let config: tokio_postgres::Config = database_url().parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let db = config.get_dbname().unwrap_or("test");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{user}@localhost:{port}/{db}?{params}")
}

#[tokio::test]
async fn the_store_works_over_verified_tls() {
    if !pg_available("the_store_works_over_verified_tls") {
        return;
    }
    let Some(cert) = server_certificate("the_store_works_over_verified_tls").await else {
        return;
    };
    let guard = SchemaGuard::new("tls");
    let app = format!("strata_tls_{}", std::process::id());
    let url = localhost_url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        cert.display()
    ));
    let store = PostgresStore::connect_with(
        PgConfig::new(url)
            .schema(&guard.0)
            .pool_size(2)
            .application_name(&app),
    )
    .await
    .expect("connect over TLS");
    let stream = StreamId::new("tls-1").unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::json("Opened", &serde_json::json!({"over": "tls"})).unwrap()],
        )
        .await
        .unwrap();
    let read = store
        .read_stream(&stream, 1, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    // The subscription sees it (the listener's connection is TLS too).
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match sub.next().await.unwrap().unwrap() {
                strata_core::SubscriptionMessage::Event(e) => break e,
                _ => continue,
            }
        }
    })
    .await
    .expect("the subscriber gets the event");
    assert_eq!(seen.stream_id, stream);

    // Every connection the store holds is encrypted.
    let client = raw_client().await;
    let row = client
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    let (count, all_tls): (i64, bool) = (row.get(0), row.get(1));
    assert!(count >= 2, "pooled and listening connections: {count}");
    assert!(all_tls, "every connection of the store uses TLS");
    store.close().await.unwrap();

    // Migrations over TLS too.
    let report = strata_postgres::migrate(&PgConfig::new(localhost_url("")).schema(&guard.0).tls(
        PgTls::Verify {
            root_certs: cert.clone(),
        },
    ))
    .await
    .unwrap();
    assert!(report.applied.is_empty());
}

#[tokio::test]
async fn a_certificate_from_another_authority_is_refused() {
    if !pg_available("a_certificate_from_another_authority_is_refused") {
        return;
    }
    if server_certificate("a_certificate_from_another_authority_is_refused")
        .await
        .is_none()
    {
        return;
    }
    let guard = SchemaGuard::new("tls_bad");
    let wrong = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/unrelated-ca.pem");
    let config = PgConfig::new(localhost_url(""))
        .schema(&guard.0)
        .pool_size(1)
        .connect_timeout(std::time::Duration::from_secs(5))
        .tls(PgTls::Verify { root_certs: wrong });
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.to_lowercase().contains("certificate"),
        "the error names the certificate problem: {text}"
    );
}

#[tokio::test]
async fn tls_without_a_root_certificate_is_a_configuration_error() {
    // No server needed: the URL is refused before connecting.
    let err = PostgresStore::connect_with(PgConfig::new(
        "postgres://postgres@localhost:5432/test?sslmode=require",
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, strata_postgres::PgError::Config(_)), "{err}");
    assert!(err.to_string().contains("sslrootcert"), "{err}");
}
