//! A member that folds its messages into a projection.

use strata_core::group::{ConsumerGroups, Delivery, GroupName};
use strata_core::{async_trait, Error};

use super::member::{GroupMember, RunningMember, Verdicts, Work};
use crate::projection::Projection;
use crate::runner::{ProjectionStatus, SharedProjection};

/// Folds messages into a shared projection; see
/// [`ProjectionRunner::run_in_group`](crate::ProjectionRunner::run_in_group).
pub(crate) struct ProjectionWork<P> {
    shared: SharedProjection<P>,
}

/// Starts `member` folding into `shared`.
pub(crate) fn spawn<P: Projection>(
    shared: SharedProjection<P>,
    member: GroupMember,
) -> strata_core::Result<RunningMember> {
    shared.publish(|p| {
        p.status = ProjectionStatus::Live;
        p.events_applied = 0;
    });
    member.spawn(ProjectionWork { shared })
}

#[async_trait]
impl<P: Projection> Work for ProjectionWork<P> {
    async fn handle(&mut self, deliveries: &[Delivery]) -> Verdicts {
        let inner = &self.shared.inner;
        let mut v = Verdicts::default();
        let mut applied = 0u64;
        let mut slot = inner.slot.write().await;
        let mut last = slot.state_position;
        for d in deliveries {
            let e = &d.event;
            // The group's source may be wider than the projection's filter
            // and query.
            if !inner.wants(e) {
                v.ack.push(d.delivery_id);
                continue;
            }
            match slot.projection.update(e) {
                Ok(()) => {
                    applied += 1;
                    last = last.max(e.position);
                    v.ack.push(d.delivery_id);
                }
                // A fold is deterministic: a retry would fail again.
                Err(err) => v.park.push((
                    d.delivery_id,
                    format!("projection `{}` failed: {err}", inner.name),
                )),
            }
        }
        if inner.durable && !v.ack.is_empty() {
            // What is acked must be durable first.
            if let Err(err) = slot.projection.commit(last).await {
                let reason = format!("projection `{}` could not commit: {err}", inner.name);
                tracing::warn!(projection = %inner.name, %reason, "commit failed; the group retries");
                v.retry = v.ack.drain(..).map(|id| (id, reason.clone())).collect();
            }
        }
        slot.state_position = last;
        drop(slot);
        let last_event_at = deliveries.last().map(|d| d.event.recorded_at);
        self.shared.publish(|p| {
            p.state_position = last;
            p.events_applied += applied;
            p.last_event_at = last_event_at.or(p.last_event_at);
        });
        v
    }

    /// Publishes the group's checkpoint as the position considered: every
    /// event at or below it was folded by some member of the group.
    async fn settled(&mut self, groups: &dyn ConsumerGroups, group: &GroupName) {
        let checkpoint = match groups.group_status(group).await {
            Ok(Some(status)) => status.checkpoint,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(group = %group, error = %e, "no group status");
                return;
            }
        };
        let position = {
            let mut slot = self.shared.inner.slot.write().await;
            slot.position = slot.position.max(checkpoint);
            slot.position
        };
        self.shared
            .publish(|p| p.position = p.position.max(position));
    }

    fn stopped(&mut self, failed: Option<&Error>) {
        let status = match failed {
            Some(e) => ProjectionStatus::Failed {
                reason: e.to_string(),
            },
            None => ProjectionStatus::Stopped,
        };
        self.shared.set_status(status);
    }
}
