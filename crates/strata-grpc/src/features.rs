//! `ServerFeatures.GetSupportedMethods`: what this server answers.

use tonic::{Request, Response, Status};

use crate::proto::features::server_features_server::ServerFeatures;
use crate::proto::features::{SupportedMethod, SupportedMethods};

/// The server version reported to clients: the protocol level this server
/// implements, which the clients compare to enable features (digits and
/// dots only, as they parse it). The v2 appends do not move it: the
/// clients turn those on by the advertised methods or call them without
/// asking, never by this version (ADR 0023).
pub const PROTOCOL_VERSION: &str = "24.10.0";

/// The `streams` service name, as the clients match it.
pub const STREAMS_SERVICE: &str = "event_store.client.streams.streams";

/// The v2 streams service name, as the clients match it (they lower-case
/// `/SERVICE/METHOD` on both sides).
pub const V2_STREAMS_SERVICE: &str = "kurrentdb.protocol.v2.streams.streamsservice";

/// The methods advertised: `(service, method, features)`.
pub const METHODS: &[(&str, &str, &[&str])] = &[
    (STREAMS_SERVICE, "read", &["all", "stream"]),
    (STREAMS_SERVICE, "append", &[]),
    (STREAMS_SERVICE, "batchappend", &[]),
    (STREAMS_SERVICE, "delete", &[]),
    (STREAMS_SERVICE, "tombstone", &[]),
    (V2_STREAMS_SERVICE, "appendsession", &[]),
    (V2_STREAMS_SERVICE, "appendrecords", &[]),
    (
        "event_store.client.server_features.serverfeatures",
        "getsupportedmethods",
        &[],
    ),
];

/// The `persistent_subscriptions` service name, as the clients match it.
pub const PERSISTENT_SERVICE: &str =
    "event_store.client.persistent_subscriptions.persistentsubscriptions";

/// The methods advertised besides [`METHODS`] when the server has consumer
/// groups (persistent subscriptions). The clients read `all` on `create`
/// as "subscriptions to `$all` are served", and turn to their HTTP
/// fallback unless `getinfo`, `list`, `replayparked` and
/// `restartsubsystem` are all listed.
pub const PERSISTENT_METHODS: &[(&str, &str, &[&str])] = &[
    (PERSISTENT_SERVICE, "create", &["stream", "all"]),
    (PERSISTENT_SERVICE, "update", &["stream", "all"]),
    (PERSISTENT_SERVICE, "delete", &["stream", "all"]),
    (PERSISTENT_SERVICE, "read", &["stream", "all"]),
    (PERSISTENT_SERVICE, "getinfo", &["stream", "all"]),
    (PERSISTENT_SERVICE, "replayparked", &["stream", "all"]),
    (PERSISTENT_SERVICE, "list", &["stream", "all"]),
    (PERSISTENT_SERVICE, "restartsubsystem", &[]),
];

/// The methods a server advertises: [`METHODS`], and
/// [`PERSISTENT_METHODS`] when it serves persistent subscriptions.
pub fn methods(
    persistent: bool,
) -> impl Iterator<Item = &'static (&'static str, &'static str, &'static [&'static str])> {
    let extra: &[_] = if persistent { PERSISTENT_METHODS } else { &[] };
    METHODS.iter().chain(extra)
}

/// The `ServerFeatures` service.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Whether persistent subscriptions are served (and so advertised).
    pub persistent: bool,
}

#[tonic::async_trait]
impl ServerFeatures for Features {
    async fn get_supported_methods(
        &self,
        _request: Request<crate::proto::shared::Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        let methods = methods(self.persistent)
            .map(|(service, method, features)| SupportedMethod {
                method_name: (*method).to_string(),
                service_name: (*service).to_string(),
                features: features.iter().map(|f| (*f).to_string()).collect(),
            })
            .collect();
        Ok(Response::new(SupportedMethods {
            methods,
            event_store_server_version: PROTOCOL_VERSION.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistent_methods_are_advertised_only_with_groups() {
        let persistent = |on| {
            methods(on)
                .filter(|(service, _, _)| *service == PERSISTENT_SERVICE)
                .count()
        };
        assert_eq!(persistent(false), 0);
        assert_eq!(persistent(true), PERSISTENT_METHODS.len());
        assert_eq!(methods(false).count(), METHODS.len());
        let create = PERSISTENT_METHODS
            .iter()
            .find(|(_, method, _)| *method == "create")
            .unwrap();
        assert!(create.2.contains(&"all"));
    }

    #[test]
    fn the_v2_appends_are_advertised_as_the_clients_match_them() {
        // The clients compare `/service/method` lower-cased.
        let paths: Vec<String> = methods(false)
            .map(|(service, method, _)| format!("/{service}/{method}"))
            .collect();
        for path in [
            "/kurrentdb.protocol.v2.streams.StreamsService/AppendSession",
            "/kurrentdb.protocol.v2.streams.StreamsService/AppendRecords",
        ] {
            assert!(paths.contains(&path.to_lowercase()), "{path}");
        }
    }
}
