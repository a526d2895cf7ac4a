//! API keys and HTTPS with a CA file, against a real server.

#![allow(clippy::unwrap_used)]

mod common;

use common::{server_test_data, TestServer};
use strata_client::{AllFilter, Client, ClientError};
use strata_core::{Direction, ExpectedVersion, NewEvent, StreamId, SubscribeFrom};
use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ServerConfig};

fn keys() -> ApiKeys {
    ApiKeys::new(vec![
        ApiKey::new(
            "writer",
            &sha256_hex("w-secret"),
            Role::Write,
            vec!["*".into()],
        )
        .unwrap(),
        ApiKey::new(
            "reader",
            &sha256_hex("r-secret"),
            Role::Read,
            vec!["*".into()],
        )
        .unwrap(),
    ])
    .unwrap()
}

fn config() -> ServerConfig {
    ServerConfig {
        api_keys: keys(),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn keys_are_sent_and_refusals_are_typed() {
    let server = TestServer::with(config(), None).await;
    let writer = Client::builder(&server.url)
        .api_key("w-secret")
        .build()
        .unwrap();
    let reader = Client::builder(&server.url)
        .api_key("r-secret")
        .build()
        .unwrap();
    let s = StreamId::new("order-1").unwrap();
    let e = NewEvent::json("Placed", &serde_json::json!({})).unwrap();
    writer
        .append(&s, ExpectedVersion::Any, std::slice::from_ref(&e))
        .await
        .unwrap();
    let page = reader
        .read_stream(&s, None, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);

    let err = reader
        .append(&s, ExpectedVersion::Any, std::slice::from_ref(&e))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("403"), "{err}");
    let nobody = Client::new(&server.url).unwrap();
    let err = nobody
        .read_all(0, 10, &AllFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    let wrong = Client::builder(&server.url)
        .api_key("nope")
        .build()
        .unwrap();
    let err = wrong
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn https_is_trusted_through_the_ca_file() {
    let cert = server_test_data("localhost.cert.pem");
    let key = server_test_data("localhost.key.pem");
    let tls = strata_server::tls_acceptor(&cert, &key).unwrap();
    let server = TestServer::with(config(), Some(tls)).await;
    // The certificate is for `localhost`.
    let url = format!("https://localhost:{}", server.addr.port());
    let client = Client::builder(&url)
        .api_key("w-secret")
        .ca_cert(&cert)
        .build()
        .unwrap();
    let s = StreamId::new("order-2").unwrap();
    let e = NewEvent::json("Placed", &serde_json::json!({"n": 1})).unwrap();
    client.append(&s, ExpectedVersion::Any, &[e]).await.unwrap();
    let mut sub = client
        .subscribe_stream(&s, SubscribeFrom::Start)
        .await
        .unwrap();
    match sub.next().await.unwrap() {
        strata_client::SubscriptionMessage::Event(e) => assert_eq!(e.event_type, "Placed"),
        other => panic!("{other:?}"),
    }

    // Without the CA file the server is not trusted.
    let untrusted = Client::builder(&url).api_key("w-secret").build().unwrap();
    let err = untrusted.head_position().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // A CA file that is not there is named.
    let err = Client::builder(&url)
        .ca_cert("/nonexistent.pem")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
}
