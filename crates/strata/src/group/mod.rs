//! Consumer groups for the framework: the core's groups (re-exported
//! here), and members that run an [`EventProcessor`](crate::EventProcessor)'s
//! handlers or a [`ProjectionRunner`](crate::ProjectionRunner)'s projection
//! as one consumer of a group.
//!
//! A [`GroupMember`] names the group, the consumer and how it reads; the
//! processor's [`run_in_group`](crate::EventProcessor::run_in_group), the
//! runner's [`run_in_group`](crate::ProjectionRunner::run_in_group) and
//! [`GroupMember::spawn_handler`] start it on a task and return a
//! [`RunningMember`]. Run several members of one group (on tasks of one
//! program, or in several processes sharing a group) to share its events.
//!
//! - Each member loops: `read` up to [`MemberConfig::read_max`] messages →
//!   hand them to its handlers (or fold them), in delivery order → `ack`
//!   what was handled, `nack` what failed → again. Stopping finishes the
//!   messages in hand, settles them, and leaves the group (its leases go
//!   back at once).
//! - **At least once**: an event may reach a handler again (a retry after a
//!   failure, a lease that timed out because handling took longer than the
//!   group's `ack_timeout_ms`, a member that died before acking, a replay
//!   of the parked list). Make handlers idempotent with the event id or the
//!   stream version.
//! - **Failures** are the group's business: a failing handler's event is
//!   nacked with `retry` and the error as reason; the group offers it again
//!   after its back-off and parks it after `max_retries` retries. The
//!   processor's own [`RetryPolicy`](crate::RetryPolicy) and
//!   [`ParkedStore`](crate::ParkedStore) are not used in group mode: the
//!   parked list is the group's ([`ConsumerGroups::parked`],
//!   [`ConsumerGroups::replay_parked`]).
//! - **Order**: with `pinned`, one stream's events go to one member at a
//!   time and never two of them are in flight, so each stream is handled in
//!   order; with `round_robin`, members handle events in any order.
//!
//! See "The framework" in `docs/adr/0020-consumer-groups.md`.

pub(crate) mod handlers;
mod member;
pub(crate) mod projection;

pub use strata_core::group::*;

pub use member::{
    GroupMember, MemberConfig, MemberReport, MemberStats, RunningMember, DEFAULT_MEMBER_READ_MAX,
    DEFAULT_MEMBER_READ_WAIT_MS, MAX_MEMBER_READ_WAIT_MS,
};
