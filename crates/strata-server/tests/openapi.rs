//! `GET /openapi.json`: valid JSON that lists every route the router serves,
//! and no route it does not. (`DELETE /streams/{stream}?erase=true` is the
//! delete route with its `erase` parameter, not a route of its own.)

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::Value;

/// Every (method, path) the router answers, as the server's code has it.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/ui"),
    ("get", "/ui/{asset}"),
    ("get", "/auth/whoami"),
    ("get", "/streams"),
    ("post", "/streams/{stream}"),
    ("get", "/streams/{stream}"),
    ("delete", "/streams/{stream}"),
    ("post", "/multi"),
    ("post", "/dcb/read"),
    ("post", "/dcb/append"),
    ("get", "/dcb/subscribe"),
    ("get", "/all"),
    ("get", "/subscribe/all"),
    ("get", "/subscribe/streams/{stream}"),
    ("get", "/streams/{stream}/metadata"),
    ("put", "/streams/{stream}/metadata"),
    ("post", "/admin/backup"),
    ("post", "/admin/scavenge"),
    ("put", "/groups/{group}"),
    ("get", "/groups"),
    ("get", "/groups/{group}"),
    ("delete", "/groups/{group}"),
    ("post", "/groups/{group}/read"),
    ("get", "/groups/{group}/subscribe"),
    ("post", "/groups/{group}/ack"),
    ("post", "/groups/{group}/nack"),
    ("get", "/groups/{group}/parked"),
    ("post", "/groups/{group}/parked/replay"),
    ("post", "/groups/{group}/parked/delete"),
];

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

memory_store!(openapi_lists_every_route, openapi_matches_the_router);

async fn openapi_lists_every_route(h: Harness) {
    let r = h.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v: Value = r.json();
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, item) in v["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // The append documents its body and its answers.
    let append = &v["paths"]["/streams/{stream}"]["post"];
    assert!(append["requestBody"]["content"]["application/json"]["schema"].is_object());
    assert!(append["responses"]["200"].is_object());
    assert!(append["responses"]["403"].is_object());
    for schema in [
        "AppendBody",
        "MultiBody",
        "EventIn",
        "Event",
        "Page",
        "ErrorBody",
        "StreamList",
        "StreamOut",
        "WhoAmI",
    ] {
        assert!(v["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    // Erasure is the DELETE's `erase` parameter, with its own answers.
    let delete = &v["paths"]["/streams/{stream}"]["delete"];
    let params: Vec<&str> = delete["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["expected_version", "hard", "erase"] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    for status in ["204", "401", "403", "409", "410", "501"] {
        assert!(delete["responses"][status].is_object(), "{status}");
    }
    // The reads list every query parameter they take: each field of the
    // wire crate's query, both directions included.
    let query_names =
        |query: Value| -> Vec<String> { query.as_object().unwrap().keys().cloned().collect() };
    let reads = [
        (
            "/streams/{stream}",
            query_names(
                serde_json::to_value(strata_wire::ReadStreamQuery {
                    from: Some(1),
                    limit: Some(1),
                    direction: Some(strata_core::Direction::Backward),
                })
                .unwrap(),
            ),
        ),
        (
            "/all",
            query_names(
                serde_json::to_value(strata_wire::ReadAllQuery {
                    after: Some(1),
                    before: Some(1),
                    direction: Some(strata_core::Direction::Backward),
                    limit: Some(1),
                    types: Some("A".into()),
                    prefix: Some("p".into()),
                    category: Some("c".into()),
                    correlation_id: Some("c".into()),
                })
                .unwrap(),
            ),
        ),
        (
            "/streams",
            query_names(
                serde_json::to_value(strata_wire::StreamsQuery {
                    prefix: Some("p".into()),
                    category: Some("c".into()),
                    after: Some("a".into()),
                    limit: Some(1),
                    system: Some(true),
                })
                .unwrap(),
            ),
        ),
    ];
    for (path, names) in reads {
        let params: Vec<&str> = v["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in &names {
            assert!(
                params.contains(&name.as_str()),
                "{path}: {name} in {params:?}"
            );
        }
    }
}

/// Each documented (method, path) is routed (not the 404/405 fallbacks), and
/// every other method on a documented path is a 405: the document and the
/// router agree.
async fn openapi_matches_the_router(h: Harness) {
    let v: Value = h.get("/openapi.json").await.json();
    for (path, item) in v["paths"].as_object().unwrap() {
        let concrete = path.replace("{stream}", "s").replace("{asset}", "app.js");
        for method in METHODS {
            let documented = item.get(*method).is_some();
            let r = h
                .request_method(&method.to_uppercase(), &format!("{concrete}?probe"))
                .await;
            let fallback = r.status == 404
                && serde_json::from_slice::<Value>(&r.body)
                    .map(|b| b["error"] == "not_found")
                    .unwrap_or(false);
            if documented {
                assert!(
                    !fallback && r.status != 405,
                    "{method} {path} is documented but not routed ({})",
                    r.status
                );
            } else {
                assert_eq!(
                    r.status, 405,
                    "{method} {path} is routed but not documented"
                );
            }
        }
    }
}
