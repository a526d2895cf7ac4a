//! Dynamic consistency boundaries over HTTP (`POST /dcb/read`,
//! `POST /dcb/append`, `docs/http-api.md`).

use std::collections::BTreeMap;

use strata_core::dcb::{AppendCondition, Query};
use strata_core::{ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId};
use strata_wire::{
    expected, DcbAppendBody, DcbAppendOut, DcbEventIn, DcbReadBody, DcbReadOut, WireEvent,
};

use crate::client::{decode, Client};
use crate::error::ClientError;

/// What a query read returned.
#[derive(Clone, Debug)]
pub struct DcbRead {
    /// The matching events, oldest first.
    pub events: Vec<RecordedEvent>,
    /// The store's head when the read began: a decision over `events`
    /// appends with the condition `after` this.
    pub head: Position,
}

/// One event of a conditional append, with its stream (`None`: the
/// server's default, `dcb-` and its first tag).
pub type DcbEvent = (Option<StreamId>, NewEvent);

impl Client {
    /// The events matching `query` after `after`, at most `limit`
    /// (`POST /dcb/read`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::dcb::{Query, QueryItem, Tag};
    /// let q = Query::new(vec![QueryItem::new(["Subscribed"], [Tag::new("course:c1").unwrap()])]).unwrap();
    /// let read = client.dcb_read(&q, strata_core::Position::START, 100).await?;
    /// println!("{} subscriptions up to {}", read.events.len(), read.head);
    /// # Ok(()) }
    /// ```
    pub async fn dcb_read(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<DcbRead, ClientError> {
        let url = self.url(&["dcb", "read"]);
        let body = DcbReadBody {
            query: query.clone(),
            after: Some(after.0),
            limit: Some(limit),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        let out: DcbReadOut<'static> = self.call(rb, &url).await?;
        let events = out
            .events
            .into_iter()
            .map(WireEvent::into_recorded)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| decode(&url, e.to_string()))?;
        Ok(DcbRead {
            events,
            head: Position(out.head),
        })
    }

    /// Appends `events`, all or none, if no event after the condition's
    /// position matches its query (none: unconditionally) and every guard
    /// holds (`POST /dcb/append`). A failed condition is
    /// [`ClientError::ConditionFailed`].
    pub async fn dcb_append(
        &self,
        events: &[DcbEvent],
        condition: Option<&AppendCondition>,
        guards: &[(StreamId, ExpectedVersion)],
    ) -> Result<DcbAppendOut, ClientError> {
        let url = self.url(&["dcb", "append"]);
        let body = DcbAppendBody {
            events: events
                .iter()
                .map(|(s, e)| DcbEventIn::from_new(s.as_ref(), e))
                .collect(),
            condition: condition.cloned(),
            expected_versions: guards
                .iter()
                .map(|(s, e)| (s.as_str().to_owned(), expected::to_json(*e)))
                .collect::<BTreeMap<_, _>>(),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        self.call(rb, &url).await
    }
}
