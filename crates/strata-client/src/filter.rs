//! Which events of `$all` a read or a subscription wants.

use strata_core::Direction;
use strata_wire::{ReadAllQuery, SubscribeAllQuery};

/// The `$all` filter the server applies (`/all`, `/subscribe/all`); every
/// field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllFilter {
    /// Event types (any of).
    pub types: Vec<String>,
    /// Stream name prefix.
    pub prefix: Option<String>,
    /// Stream category (the part of the name before the first `-`).
    pub category: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
}

impl AllFilter {
    /// Whether the filter lets every event through.
    ///
    /// ```
    /// assert!(strata_client::AllFilter::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
            && self.prefix.is_none()
            && self.category.is_none()
            && self.correlation_id.is_none()
    }

    fn types(&self) -> Option<String> {
        (!self.types.is_empty()).then(|| self.types.join(","))
    }

    pub(crate) fn read_query(&self, after: u64, limit: usize) -> ReadAllQuery {
        ReadAllQuery {
            after: Some(after),
            before: None,
            direction: None,
            limit: Some(limit),
            types: self.types(),
            prefix: self.prefix.clone(),
            category: self.category.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }

    pub(crate) fn read_backward_query(&self, before: Option<u64>, limit: usize) -> ReadAllQuery {
        ReadAllQuery {
            after: None,
            before,
            direction: Some(Direction::Backward),
            limit: Some(limit),
            types: self.types(),
            prefix: self.prefix.clone(),
            category: self.category.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }

    pub(crate) fn subscribe_query(&self) -> SubscribeAllQuery {
        SubscribeAllQuery {
            after: None,
            types: self.types(),
            prefix: self.prefix.clone(),
            category: self.category.clone(),
            correlation_id: self.correlation_id.clone(),
            batch: false,
        }
    }
}
