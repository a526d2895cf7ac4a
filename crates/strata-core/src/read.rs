//! Reading a stream: its direction, and the window of versions a read
//! returns. Every backend computes the window here, so they cannot drift.

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// Which way to read a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Oldest first: versions `from`, `from + 1`, ...
    #[default]
    Forward,
    /// Newest first: versions `from`, `from - 1`, ...
    Backward,
}

/// Version to pass as `from` to read a stream backward from its end.
pub const FROM_END: Version = Version::MAX;

/// The versions a stream read returns, in the order it returns them.
///
/// A stream holds readable versions `first..=last` (versions before `first`
/// were deleted). A read from `from` of at most `max_count` events clamps
/// `from` into that range: forwards it starts at `max(from, first)`,
/// backwards at `min(from, last)` (so [`FROM_END`] reads from the end).
///
/// ```
/// use strata_core::{Direction, ReadWindow};
/// let w = ReadWindow::new(3, 10, 1, 4, Direction::Forward);
/// assert_eq!(w.versions().collect::<Vec<_>>(), vec![3, 4, 5, 6]);
/// let w = ReadWindow::new(3, 10, u64::MAX, 2, Direction::Backward);
/// assert_eq!(w.versions().collect::<Vec<_>>(), vec![10, 9]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadWindow {
    /// Lowest version returned (inclusive).
    pub low: Version,
    /// One past the highest version returned; `low == high` when empty.
    pub high: Version,
    /// The order of the returned versions.
    pub direction: Direction,
}

impl ReadWindow {
    /// The window of a read of the readable versions `first..=last`, from
    /// `from`, at most `max_count` events, in `direction`. Empty when nothing
    /// is readable there (including `first > last`).
    pub fn new(
        first: Version,
        last: Version,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Self {
        let empty = ReadWindow {
            low: first,
            high: first,
            direction,
        };
        match direction {
            Direction::Forward => {
                let start = from.max(first);
                if start > last {
                    return empty;
                }
                let end = start.saturating_add(max_count as u64).min(last + 1);
                ReadWindow {
                    low: start,
                    high: end,
                    direction,
                }
            }
            Direction::Backward => {
                let start = from.min(last);
                if start < first {
                    return empty;
                }
                let stop = start.saturating_sub(max_count as u64).max(first - 1);
                ReadWindow {
                    low: stop + 1,
                    high: start + 1,
                    direction,
                }
            }
        }
    }

    /// Number of versions in the window.
    pub fn len(&self) -> usize {
        (self.high - self.low) as usize
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.high == self.low
    }

    /// The window's versions in read order (descending when backward).
    pub fn versions(&self) -> impl Iterator<Item = Version> {
        let range = self.low..self.high;
        let backward = self.direction == Direction::Backward;
        let (fwd, bwd) = if backward {
            (None, Some(range.rev()))
        } else {
            (Some(range), None)
        };
        fwd.into_iter().flatten().chain(bwd.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(first: u64, last: u64, from: u64, n: usize, d: Direction) -> Vec<u64> {
        ReadWindow::new(first, last, from, n, d)
            .versions()
            .collect()
    }

    #[test]
    fn forward_windows_clamp_to_the_readable_range() {
        assert_eq!(
            collect(1, 5, 0, 10, Direction::Forward),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(collect(3, 5, 1, 2, Direction::Forward), vec![3, 4]);
        assert_eq!(collect(1, 5, 6, 2, Direction::Forward), Vec::<u64>::new());
        assert_eq!(collect(1, 5, 5, 0, Direction::Forward), Vec::<u64>::new());
        assert_eq!(collect(6, 5, 1, 9, Direction::Forward), Vec::<u64>::new());
    }

    #[test]
    fn backward_windows_clamp_to_the_readable_range() {
        assert_eq!(collect(1, 5, FROM_END, 2, Direction::Backward), vec![5, 4]);
        assert_eq!(collect(3, 5, 4, 10, Direction::Backward), vec![4, 3]);
        assert_eq!(collect(3, 5, 2, 10, Direction::Backward), Vec::<u64>::new());
        assert_eq!(collect(1, 5, 3, 0, Direction::Backward), Vec::<u64>::new());
        assert_eq!(
            collect(6, 5, FROM_END, 3, Direction::Backward),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn lengths_match_the_versions() {
        let w = ReadWindow::new(2, 9, 4, 3, Direction::Backward);
        assert_eq!((w.low, w.high, w.len()), (2, 5, 3));
        assert!(ReadWindow::new(1, 0, 1, 5, Direction::Forward).is_empty());
    }
}
