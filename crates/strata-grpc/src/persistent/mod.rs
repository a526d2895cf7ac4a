//! The `PersistentSubscriptions` service over a store's consumer groups
//! (ADR 0024): a persistent subscription is a Strata consumer group whose
//! name encodes the subscription's stream and group ([`names`]), whose
//! settings map to the group's ([`settings`]), and whose readers are
//! consumers of the group for the length of a call ([`session`]).
//!
//! Managing subscriptions (create, update, delete, get-info, list, replay
//! parked, restart) needs the `admin` role; reading one needs `read` on
//! its stream, or for `$all` a key that covers every stream, as consuming
//! a group over HTTP does.

pub mod admin;
pub mod names;
pub mod profile;
pub mod session;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use strata_core::group::{ConsumerGroups, GroupSource};
use strata_core::EventStore;
use strata_server::Role;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Auth, Caller};
use crate::proto::persistent::persistent_subscriptions_server::PersistentSubscriptions;
use crate::proto::persistent::{
    read_req, CreateReq, CreateResp, DeleteReq, DeleteResp, GetInfoReq, GetInfoResp, ListReq,
    ListResp, ReadReq, ReadResp, ReplayParkedReq, ReplayParkedResp, UpdateReq, UpdateResp,
};
use crate::proto::shared::Empty;
use crate::status;
use crate::streams::Answers;

/// The `PersistentSubscriptions` service over a store and its groups.
#[derive(Clone)]
pub struct PersistentService {
    store: Arc<dyn EventStore>,
    groups: Arc<dyn ConsumerGroups>,
    auth: Auth,
    /// Held across a create's check and put, so that of two creates of
    /// one key through this server exactly one succeeds.
    creating: Arc<tokio::sync::Mutex<()>>,
    /// The read sessions open here.
    sessions: Arc<session::Sessions>,
}

impl PersistentService {
    /// The service over `store` and its `groups`, checking callers with
    /// `auth`.
    pub fn new(store: Arc<dyn EventStore>, groups: Arc<dyn ConsumerGroups>, auth: Auth) -> Self {
        Self {
            store,
            groups,
            auth,
            creating: Arc::new(tokio::sync::Mutex::new(())),
            sessions: Arc::new(session::Sessions::default()),
        }
    }

    /// The caller, who must hold the `admin` role.
    fn admin<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = self.auth.caller(request.metadata())?;
        caller.require_role(Role::Admin)?;
        Ok(caller)
    }
}

#[tonic::async_trait]
impl PersistentSubscriptions for PersistentService {
    async fn create(&self, request: Request<CreateReq>) -> Result<Response<CreateResp>, Status> {
        self.admin(&request)?;
        let _one_at_a_time = self.creating.lock().await;
        admin::create(self.groups.as_ref(), request.into_inner()).await?;
        Ok(Response::new(CreateResp {}))
    }

    async fn update(&self, request: Request<UpdateReq>) -> Result<Response<UpdateResp>, Status> {
        self.admin(&request)?;
        admin::update(self.groups.as_ref(), request.into_inner()).await?;
        Ok(Response::new(UpdateResp {}))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        self.admin(&request)?;
        admin::delete(self.groups.as_ref(), request.into_inner()).await?;
        Ok(Response::new(DeleteResp {}))
    }

    type ReadStream = Answers<ReadResp>;

    async fn read(
        &self,
        request: Request<Streaming<ReadReq>>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let peer = session::Peer {
            from: request
                .remote_addr()
                .map_or_else(String::new, |a| a.to_string()),
            user: match &caller {
                Caller::Key(key) => key.name().to_string(),
                Caller::Open => String::new(),
            },
        };
        let mut incoming = request.into_inner();
        let options = match incoming.message().await?.and_then(|m| m.content) {
            Some(read_req::Content::Options(o)) => o,
            _ => return Err(Status::invalid_argument("a read starts with its options")),
        };
        let start = session::start(options)?;
        match &start.key.source {
            names::Source::Stream(s) => caller.require(Role::Read, s.as_str())?,
            names::Source::All => caller.require_every_stream(Role::Read)?,
        }
        let name = start.key.group_name()?;
        let status = self
            .groups
            .group_status(&name)
            .await
            .map_err(|e| status::from_error(&e))?
            .ok_or_else(|| admin::not_found(&start.key))?;
        let source_matches = match (&status.settings.source, &start.key.source) {
            (GroupSource::Stream(a), names::Source::Stream(b)) => a == b,
            (GroupSource::All(_), names::Source::All) => true,
            _ => false,
        };
        if !source_matches {
            return Err(admin::not_found(&start.key));
        }
        let profile = profile::Profile::of(&status.settings)?;
        let context = session::Context {
            groups: Arc::clone(&self.groups),
            sessions: Arc::clone(&self.sessions),
            name,
            lease: Duration::from_millis(status.settings.ack_timeout_ms),
            peer,
            filter: profile.event_filter()?,
            max_subscribers: profile.max_subscribers(),
            max_retries: status.settings.max_retries,
        };
        let answers = session::run(context, start, incoming)?;
        Ok(Response::new(answers))
    }

    async fn get_info(
        &self,
        request: Request<GetInfoReq>,
    ) -> Result<Response<GetInfoResp>, Status> {
        self.admin(&request)?;
        let answer = admin::get_info(
            self.store.as_ref(),
            self.groups.as_ref(),
            &self.sessions,
            request.into_inner(),
        )
        .await?;
        Ok(Response::new(answer))
    }

    async fn replay_parked(
        &self,
        request: Request<ReplayParkedReq>,
    ) -> Result<Response<ReplayParkedResp>, Status> {
        self.admin(&request)?;
        admin::replay_parked(self.groups.as_ref(), request.into_inner()).await?;
        Ok(Response::new(ReplayParkedResp {}))
    }

    async fn list(&self, request: Request<ListReq>) -> Result<Response<ListResp>, Status> {
        self.admin(&request)?;
        let answer = admin::list(
            self.store.as_ref(),
            self.groups.as_ref(),
            &self.sessions,
            request.into_inner(),
        )
        .await?;
        Ok(Response::new(answer))
    }

    /// Strata's groups have no subsystem to restart: answered at once.
    async fn restart_subsystem(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.admin(&request)?;
        Ok(Response::new(Empty {}))
    }
}
