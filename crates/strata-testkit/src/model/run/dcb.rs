//! DCB operations (query reads, conditional appends and their exact
//! retries), run against the backend and the model.

use strata_core::dcb::AppendCondition;

use super::super::dcb_ops::{resolve_query, GenAfter, GenQuery};
use super::*;

impl<H: StoreHarness> Run<'_, H> {
    /// A generated position to start after, in the backend's positions and
    /// in the model's. A rank whose backend position the test has not seen
    /// (retention hid the event) moves back to the nearest one it has: the
    /// events between are hidden from reads and conditions alike.
    fn resolve_after(
        &self,
        after: &GenAfter,
    ) -> Result<Option<(Position, Position)>, TestCaseError> {
        let n = self.backend_positions.len();
        let last = self.last_backend_position()?;
        Ok(match *after {
            GenAfter::None => None,
            GenAfter::Rank(r) => {
                let mut k = r % (n + 1);
                while k > 0 && self.backend_positions[k - 1].is_none() {
                    k -= 1;
                }
                Some(match k {
                    0 => (Position::START, Position::START),
                    k => (self.backend_positions[k - 1].unwrap(), Position(k as u64)),
                })
            }
            GenAfter::Head => Some((last.unwrap_or(Position::START), Position(n as u64))),
            GenAfter::PastHead => Some((
                Position(last.map_or(0, |p| p.0) + 3),
                Position(n as u64 + 3),
            )),
        })
    }

    pub(super) async fn op_read_query(
        &mut self,
        what: &str,
        query: &GenQuery,
        after: &GenAfter,
        count: &GenCount,
    ) -> Result<(), TestCaseError> {
        let query = resolve_query(query);
        let (backend_after, model_after) = self
            .resolve_after(after)?
            .unwrap_or((Position::START, Position::START));
        let count = self.resolve_count(count);
        let want = self.model.read_query(&query, model_after, count);
        let got = self.store().read_query(&query, backend_after, count).await;
        let what =
            format!("{what}: read_query after {backend_after} (model {model_after}) x{count}");
        match (&got, &want) {
            (Ok(g), Ok(w)) => self.check_events(&what, g, w),
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(_)) => Err(TestCaseError::fail(format!(
                "{what}: backend failed: {e:?}"
            ))),
        }
    }

    pub(super) async fn op_append_if(
        &mut self,
        what: &str,
        parts: &[(usize, GenExpected, Vec<GenEvent>)],
        query: &GenQuery,
        after: &GenAfter,
    ) -> Result<(), TestCaseError> {
        let mut resolved = Vec::new();
        for (stream, expected, events) in parts {
            let stream = stream_id(*stream);
            let expected = self.resolve_expected(&stream, expected);
            let events = events.iter().map(|g| self.resolve_event(g)).collect();
            resolved.push(StreamAppend::new(stream, expected, events));
        }
        for part in &resolved {
            self.remember(&part.events);
        }
        self.append_if(what, resolved, query, after).await
    }

    /// Sends an earlier multi-stream (or conditional) append again, exactly,
    /// with a condition: it answers with the original result whatever the
    /// condition says.
    pub(super) async fn op_retry_if(
        &mut self,
        what: &str,
        of: usize,
        query: &GenQuery,
        after: &GenAfter,
    ) -> Result<(), TestCaseError> {
        if self.multis.is_empty() {
            return Ok(());
        }
        let parts = self.multis[of % self.multis.len()].clone();
        self.append_if(&format!("{what}: retry"), parts, query, after)
            .await
    }

    async fn append_if(
        &mut self,
        what: &str,
        parts: Vec<StreamAppend>,
        query: &GenQuery,
        after: &GenAfter,
    ) -> Result<(), TestCaseError> {
        let query = resolve_query(query);
        let after = self.resolve_after(after)?;
        let backend = AppendCondition::new(query.clone(), after.map(|(b, _)| b));
        let model = AppendCondition::new(query, after.map(|(_, m)| m));
        let want = self.model.append_if(&parts, &model);
        let got = self.store().append_if(parts.clone(), &backend).await;
        let what = format!(
            "{what}: append_if after {:?} (model {:?})",
            backend.after, model.after
        );
        self.check_multi(&what, &parts, got, want).await
    }
}
