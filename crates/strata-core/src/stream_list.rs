//! Listing streams: which streams a store holds, page by page, in the byte
//! order of their names ([`EventStore::list_streams`](crate::EventStore::list_streams)).
//!
//! A page holds the [`StreamInfo`] of each stream, as
//! [`stream_info`](crate::EventStore::stream_info) would answer it: live,
//! soft-deleted and tombstoned streams are all listed (an erased stream is
//! tombstoned, and listed as such). System streams (names starting with
//! `$`, such as metadata streams `$$NAME`) are listed only when asked for.
//!
//! ```
//! # use strata_core::*;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! for name in ["orders-2", "orders-1", "users-1"] {
//!     let event = NewEvent::json("Created", &serde_json::json!({})).unwrap();
//!     store.append(&StreamId::new(name).unwrap(), ExpectedVersion::Any, vec![event]).await.unwrap();
//! }
//! let query = StreamListQuery::new(1).category("orders");
//! let page = store.list_streams(&query).await.unwrap();
//! assert_eq!(page.streams[0].stream.as_str(), "orders-1");
//! let rest = store.list_streams(&query.after(page.next.unwrap())).await.unwrap();
//! assert_eq!(rest.streams[0].stream.as_str(), "orders-2");
//! assert_eq!(rest.next, None);
//! # });
//! ```

use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stream_id::{category_of, StreamId, MAX_STREAM_ID_BYTES};
use crate::stream_info::StreamInfo;

/// The most streams one page lists: a larger `limit` is cut to it.
pub const MAX_LIST_STREAMS: usize = 1_000;

/// Which streams to list, and where the page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamListQuery {
    /// Only streams whose names start with this.
    pub prefix: Option<String>,
    /// Only streams of this category, as [`ReadFilter::category`](crate::ReadFilter)
    /// means it: `orders` matches `orders` and `orders-17`.
    pub category: Option<String>,
    /// Start strictly after this name (the `next` of the page before).
    pub after: Option<StreamId>,
    /// The most streams to list: at least 1; more than
    /// [`MAX_LIST_STREAMS`] is cut to it.
    pub limit: usize,
    /// List system streams (names starting with `$`) too.
    pub include_system: bool,
}

impl StreamListQuery {
    /// Every user stream, from the first, `limit` per page.
    pub fn new(limit: usize) -> Self {
        StreamListQuery {
            prefix: None,
            category: None,
            after: None,
            limit,
            include_system: false,
        }
    }

    /// Only streams whose names start with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Only streams of `category`.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Start strictly after `stream`.
    pub fn after(mut self, stream: StreamId) -> Self {
        self.after = Some(stream);
        self
    }

    /// Whether to list system streams too.
    pub fn include_system(mut self, include: bool) -> Self {
        self.include_system = include;
        self
    }

    /// The page size the store uses: `limit` cut to [`MAX_LIST_STREAMS`].
    pub fn page_size(&self) -> usize {
        self.limit.min(MAX_LIST_STREAMS)
    }

    /// Checks the query: a `limit` of 0 and a prefix or category holding a
    /// NUL character are [`Error::InvalidInput`]. Stores call it first.
    ///
    /// ```
    /// use strata_core::StreamListQuery;
    /// assert!(StreamListQuery::new(10).prefix("orders-").validate().is_ok());
    /// assert_eq!(StreamListQuery::new(0).validate().unwrap_err().kind(), "invalid_input");
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 {
            return Err(Error::invalid("a stream list needs a limit of at least 1"));
        }
        let fields = [
            ("prefix", self.prefix.as_deref()),
            ("category", self.category.as_deref()),
        ];
        for (what, value) in fields {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(Error::invalid(format!(
                    "the stream list's {what} contains a NUL character"
                )));
            }
        }
        Ok(())
    }

    /// Whether stream `name` belongs on a page: after `after`, with the
    /// prefix and category asked, and not a system stream unless those are
    /// asked for.
    pub fn matches(&self, name: &str) -> bool {
        self.after.as_ref().is_none_or(|a| name > a.as_str())
            && self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
            && self
                .category
                .as_deref()
                .is_none_or(|c| category_of(name) == c)
            && (self.include_system || !name.starts_with('$'))
    }

    /// The one prefix every listed name starts with, for stores that look
    /// names up in an ordered index: the longer of `prefix` and `category`
    /// (a name of category `c` starts with `c`), or `""` when neither is
    /// set. `None` when no name can match (the two disagree, the category
    /// holds a `-`, or only system streams could match and they are not
    /// asked for).
    ///
    /// ```
    /// use strata_core::StreamListQuery;
    /// let q = StreamListQuery::new(10).prefix("ord").category("orders");
    /// assert_eq!(q.name_prefix(), Some("orders"));
    /// assert_eq!(StreamListQuery::new(10).category("a-b").name_prefix(), None);
    /// ```
    pub fn name_prefix(&self) -> Option<&str> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        let narrowest = match self.category.as_deref() {
            None => prefix,
            Some(c) if c.contains('-') => return None,
            Some(c) if c.starts_with(prefix) => c,
            // `prefix` may go past the category: `orders-1` for `orders`.
            Some(c) if prefix.starts_with(c) => {
                if prefix.len() > c.len() && !prefix[c.len()..].starts_with('-') {
                    return None;
                }
                prefix
            }
            Some(_) => return None,
        };
        if narrowest.starts_with('$') && !self.include_system {
            return None;
        }
        Some(narrowest)
    }
}

/// One page of streams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPage {
    /// The streams, in ascending byte order of their names.
    pub streams: Vec<StreamInfo>,
    /// Where the next page starts (its `after`), when more streams may
    /// follow; `None` at the end.
    pub next: Option<StreamId>,
}

/// The names of one page, picked from names in any order (a hash map's
/// keys): the first [`page_size`](StreamListQuery::page_size) names
/// `query` matches, ascending, and whether more match. It keeps at most
/// one page of names, whatever `names` holds; the cost is one pass over
/// them.
///
/// ```
/// use strata_core::{StreamId, StreamListQuery};
/// use strata_core::stream_list::pick_page;
/// let names: Vec<StreamId> = ["c", "a", "b"].iter().map(|n| StreamId::new(n).unwrap()).collect();
/// let (page, more) = pick_page(&StreamListQuery::new(2), names.iter());
/// assert_eq!(page, vec![names[1].clone(), names[2].clone()]);
/// assert!(more);
/// ```
pub fn pick_page<'a>(
    query: &StreamListQuery,
    names: impl Iterator<Item = &'a StreamId>,
) -> (Vec<StreamId>, bool) {
    let size = query.page_size();
    // A max-heap of the smallest `size + 1` names seen: the one extra tells
    // whether more follow.
    let mut smallest: BinaryHeap<&StreamId> = BinaryHeap::with_capacity(size + 1);
    for name in names.filter(|n| query.matches(n.as_str())) {
        if smallest.len() <= size {
            smallest.push(name);
        } else if smallest.peek().is_some_and(|top| name < *top) {
            smallest.pop();
            smallest.push(name);
        }
    }
    let mut page: Vec<StreamId> = smallest.into_sorted_vec().into_iter().cloned().collect();
    let more = page.len() > size;
    page.truncate(size);
    (page, more)
}

/// The page of `streams` (ascending, at most one past the page size, as
/// an ordered index reads them): `next` is the last listed when one more
/// was read.
pub fn page_of(query: &StreamListQuery, mut streams: Vec<StreamInfo>) -> StreamPage {
    let more = streams.len() > query.page_size();
    streams.truncate(query.page_size());
    let next = if more {
        streams.last().map(|s| s.stream.clone())
    } else {
        None
    };
    StreamPage { streams, next }
}

/// The smallest string above every name that starts with `prefix`, if
/// there is one: `prefix` with its last character replaced by the next
/// one (names sort by bytes of UTF-8, that is by code points). `None` for
/// the empty prefix.
///
/// ```
/// use strata_core::stream_list::prefix_end;
/// assert_eq!(prefix_end("orders-").as_deref(), Some("orders."));
/// assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
/// assert_eq!(prefix_end(""), None);
/// ```
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A string above every stream name: names hold at most
/// [`MAX_STREAM_ID_BYTES`] bytes, fewer than this many of the highest
/// character. For an ordered index read with no upper bound.
pub fn above_every_name() -> String {
    char::MAX
        .to_string()
        .repeat(MAX_STREAM_ID_BYTES / char::MAX.len_utf8() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<StreamId> {
        names.iter().map(|n| StreamId::any(n).unwrap()).collect()
    }

    #[test]
    fn picks_the_smallest_matching_names() {
        let names = ids(&["b-2", "a-1", "$$a-1", "b-1", "c", "b"]);
        let q = StreamListQuery::new(2).category("b");
        let (page, more) = pick_page(&q, names.iter());
        assert_eq!(page, ids(&["b", "b-1"]));
        assert!(more);
        let (page, more) = pick_page(&q.clone().after(page[1].clone()), names.iter());
        assert_eq!(page, ids(&["b-2"]));
        assert!(!more);
        let all = StreamListQuery::new(10).include_system(true);
        let (page, _) = pick_page(&all, names.iter());
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(page, sorted);
    }

    #[test]
    fn name_prefix_narrows_or_rules_out() {
        let q = StreamListQuery::new(1);
        assert_eq!(q.name_prefix(), Some(""));
        assert_eq!(
            q.clone()
                .prefix("orders-1")
                .category("orders")
                .name_prefix(),
            Some("orders-1")
        );
        assert_eq!(
            q.clone().prefix("ordersx").category("orders").name_prefix(),
            None
        );
        assert_eq!(
            q.clone().prefix("users").category("orders").name_prefix(),
            None
        );
        assert_eq!(q.clone().prefix("$$").name_prefix(), None);
        assert_eq!(
            q.clone().prefix("$$").include_system(true).name_prefix(),
            Some("$$")
        );
    }

    #[test]
    fn nothing_sorts_above_the_ceiling() {
        let top = above_every_name();
        let longest = char::MAX.to_string().repeat(MAX_STREAM_ID_BYTES / 4);
        assert!(StreamId::new(&longest).is_ok());
        assert!(longest.as_str() < top.as_str());
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    }
}
