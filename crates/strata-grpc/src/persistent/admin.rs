//! Create, Update, Delete, GetInfo, List and ReplayParked over a store's
//! consumer groups. Each needs the `admin` role, as managing a group over
//! HTTP does.

use strata_core::group::{ConsumerGroups, GroupSource};
use strata_core::{EventStore, ReadFilter};
use tonic::{Code, Status};

use super::names::{Key, Source};
use super::session::Sessions;
use super::settings::{self, WireSettings};
use crate::proto::persistent::create_req::all_options::FilterOption;
use crate::proto::persistent::{
    create_req, delete_req, get_info_req, list_req, replay_parked_req, update_req, CreateReq,
    DeleteReq, GetInfoReq, GetInfoResp, ListReq, ListResp, ReplayParkedReq, SubscriptionInfo,
    UpdateReq,
};
use crate::status;

/// The most parked messages one ReplayParked offers again (`stop_at` may
/// ask for fewer; without it this many are replayed).
pub const MAX_REPLAY_PARKED: usize = 10_000;

/// `NotFound` for a subscription that does not exist.
pub fn not_found(key: &Key) -> Status {
    status::with_exception(
        Code::NotFound,
        format!(
            "persistent subscription `{}` on `{}` does not exist",
            key.group,
            key.source.label()
        ),
        status::SUBSCRIPTION_MISSING,
    )
}

/// Creates a subscription; `AlreadyExists` when its key is taken.
pub async fn create(groups: &dyn ConsumerGroups, request: CreateReq) -> Result<(), Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a create needs its options"))?;
    #[allow(deprecated)]
    let deprecated_revision = options.settings.as_ref().map_or(0, |s| s.revision);
    let wire: WireSettings = options.settings.unwrap_or_default().into();
    #[allow(deprecated)]
    let (source, group_source, client_filter, start) = match options.stream_option {
        Some(create_req::options::StreamOption::Stream(s)) => {
            let stream = crate::mapping::stream_id(s.stream_identifier.as_ref())?;
            let start = settings::stream_start(s.revision_option, deprecated_revision);
            (
                Source::Stream(stream.clone()),
                GroupSource::Stream(stream),
                None,
                start,
            )
        }
        Some(create_req::options::StreamOption::All(a)) => {
            let (filter, client_filter) = match &a.filter_option {
                Some(FilterOption::Filter(f)) => settings::all_filter(Some(f))?,
                Some(FilterOption::NoFilter(_)) | None => (ReadFilter::all(), None),
            };
            let start = settings::all_start(a.all_option);
            (Source::All, GroupSource::All(filter), client_filter, start)
        }
        None => {
            let stream = crate::mapping::stream_id(options.stream_identifier.as_ref())?;
            (
                Source::Stream(stream.clone()),
                GroupSource::Stream(stream),
                None,
                settings::stream_start(None, deprecated_revision),
            )
        }
    };
    if wire.tuning.resolve_links {
        tracing::debug!("resolve_links asked for; Strata has no link events to resolve");
    }
    let key = Key::new(source, &options.group_name)?;
    let name = key.group_name()?;
    let group_settings = settings::new_group(group_source, client_filter.as_ref(), start, &wire)?;
    if groups
        .group_status(&name)
        .await
        .map_err(|e| status::from_error(&e))?
        .is_some()
    {
        return Err(status::with_exception(
            Code::AlreadyExists,
            format!(
                "persistent subscription `{}` on `{}` already exists",
                key.group,
                key.source.label()
            ),
            status::SUBSCRIPTION_EXISTS,
        ));
    }
    groups
        .put_group(&name, group_settings)
        .await
        .map_err(|e| status::from_error(&e))?;
    Ok(())
}

/// Updates a subscription's settings (timeout, retries, strategy); its
/// source, start and checkpoint stay.
pub async fn update(groups: &dyn ConsumerGroups, request: UpdateReq) -> Result<(), Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("an update needs its options"))?;
    let wire: WireSettings = options.settings.unwrap_or_default().into();
    #[allow(deprecated)]
    let source = match &options.stream_option {
        Some(update_req::options::StreamOption::Stream(s)) => {
            Source::of(s.stream_identifier.as_ref(), false)?
        }
        Some(update_req::options::StreamOption::All(_)) => Source::All,
        None => Source::of(options.stream_identifier.as_ref(), false)?,
    };
    let key = Key::new(source, &options.group_name)?;
    let name = key.group_name()?;
    let current = groups
        .group_status(&name)
        .await
        .map_err(|e| status::from_error(&e))?
        .ok_or_else(|| not_found(&key))?;
    let mut next = current.settings;
    settings::apply(&wire, &mut next)?;
    groups
        .put_group(&name, next)
        .await
        .map_err(|e| status::from_error(&e))?;
    Ok(())
}

/// Deletes a subscription, its checkpoint and its parked messages.
pub async fn delete(groups: &dyn ConsumerGroups, request: DeleteReq) -> Result<(), Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a delete needs its options"))?;
    let source = match &options.stream_option {
        Some(delete_req::options::StreamOption::StreamIdentifier(s)) => Source::of(Some(s), false)?,
        Some(delete_req::options::StreamOption::All(_)) => Source::All,
        None => return Err(Status::invalid_argument("a delete names a stream or $all")),
    };
    let key = Key::new(source, &options.group_name)?;
    let deleted = groups
        .delete_group(&key.group_name()?)
        .await
        .map_err(|e| status::from_error(&e))?;
    if deleted {
        Ok(())
    } else {
        Err(not_found(&key))
    }
}

/// One subscription's state.
pub async fn get_info(
    store: &dyn EventStore,
    groups: &dyn ConsumerGroups,
    sessions: &Sessions,
    request: GetInfoReq,
) -> Result<GetInfoResp, Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a get-info needs its options"))?;
    let source = match &options.stream_option {
        Some(get_info_req::options::StreamOption::StreamIdentifier(s)) => {
            Source::of(Some(s), false)?
        }
        Some(get_info_req::options::StreamOption::All(_)) => Source::All,
        None => {
            return Err(Status::invalid_argument(
                "a get-info names a stream or $all",
            ))
        }
    };
    let key = Key::new(source, &options.group_name)?;
    let status = groups
        .group_status(&key.group_name()?)
        .await
        .map_err(|e| status::from_error(&e))?
        .ok_or_else(|| not_found(&key))?;
    let mut info = settings::info(store, &key, &status).await?;
    info.connections = sessions.connections(&status.name);
    Ok(GetInfoResp {
        subscription_info: Some(info),
    })
}

/// Every subscription, or those of one stream or of `$all`.
pub async fn list(
    store: &dyn EventStore,
    groups: &dyn ConsumerGroups,
    sessions: &Sessions,
    request: ListReq,
) -> Result<ListResp, Status> {
    let wanted = match request.options.and_then(|o| o.list_option) {
        Some(list_req::options::ListOption::ListForStream(s)) => match s.stream_option {
            Some(list_req::stream_option::StreamOption::Stream(id)) => {
                Some(Source::of(Some(&id), false)?)
            }
            Some(list_req::stream_option::StreamOption::All(_)) => Some(Source::All),
            None => return Err(Status::invalid_argument("a list names a stream or $all")),
        },
        Some(list_req::options::ListOption::ListAllSubscriptions(_)) | None => None,
    };
    let all = groups
        .list_groups()
        .await
        .map_err(|e| status::from_error(&e))?;
    let mut subscriptions: Vec<SubscriptionInfo> = Vec::new();
    for status in &all {
        let Some(key) = Key::from_group_name(&status.name) else {
            continue;
        };
        if wanted.as_ref().is_some_and(|w| *w != key.source) {
            continue;
        }
        let mut info = settings::info(store, &key, status).await?;
        info.connections = sessions.connections(&status.name);
        subscriptions.push(info);
    }
    Ok(ListResp { subscriptions })
}

/// Offers parked messages to the subscription again: `stop_at` of them,
/// or up to [`MAX_REPLAY_PARKED`].
pub async fn replay_parked(
    groups: &dyn ConsumerGroups,
    request: ReplayParkedReq,
) -> Result<(), Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a replay needs its options"))?;
    let source = match &options.stream_option {
        Some(replay_parked_req::options::StreamOption::StreamIdentifier(s)) => {
            Source::of(Some(s), false)?
        }
        Some(replay_parked_req::options::StreamOption::All(_)) => Source::All,
        None => return Err(Status::invalid_argument("a replay names a stream or $all")),
    };
    let limit = match options.stop_at_option {
        Some(replay_parked_req::options::StopAtOption::StopAt(n)) => usize::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_REPLAY_PARKED)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "stop_at must be 0 to {MAX_REPLAY_PARKED}, got {n}"
                ))
            })?,
        Some(replay_parked_req::options::StopAtOption::NoLimit(_)) | None => MAX_REPLAY_PARKED,
    };
    let key = Key::new(source, &options.group_name)?;
    let name = key.group_name()?;
    if groups
        .group_status(&name)
        .await
        .map_err(|e| status::from_error(&e))?
        .is_none()
    {
        return Err(not_found(&key));
    }
    if limit == 0 {
        return Ok(());
    }
    groups
        .replay_parked(&name, limit)
        .await
        .map_err(|e| status::from_error(&e))?;
    Ok(())
}
