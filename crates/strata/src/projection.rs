//! Projections: read models folded from events,
//! `project(E, φ) = fold(E, φ₀, λp, e: φ(p, e))`.
//!
//! - [`Projection`] is the untyped contract over recorded events: `update`
//!   folds one event in, `reset` goes back to `φ₀`, `name` identifies its
//!   checkpoint, `filter` says which events of `$all` it wants, and
//!   `dcb_query` narrows them to the events matching a DCB [`Query`].
//! - [`TypedProjection`] folds an aggregate's event enum instead; wrap it in
//!   [`Typed`] to get a [`Projection`] that decodes (and
//!   [upcasts](crate::Upcasters)) each event with the framework's codec.
//!
//! A [`ProjectionRunner`](crate::ProjectionRunner) feeds a projection, keeps
//! its checkpoint and rebuilds it; a [`QueryModel`](crate::QueryModel) serves
//! queries from it. Delivery is *at least once* (see
//! `docs/adr/0004-projections-and-consistency.md`): after a crash a runner
//! resumes from its last checkpoint and may hand a projection events it had
//! already applied. A projection makes that harmless by remembering, with
//! each row it keeps, the stream version of the last event folded into it
//! and ignoring events at or below it — as
//! [`AccountBalanceProjection`](crate::account_balance::AccountBalanceProjection) does.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Visitor};
use strata_core::dcb::Query;
use strata_core::{async_trait, Position, ReadFilter, RecordedEvent, StreamId, Version};

use crate::error::DecodeError;
use crate::event::DomainEvent;
use crate::upcast::Upcasters;

/// Why a projection could not fold an event in, or could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The event store (or the checkpoint store) failed.
    #[error(transparent)]
    Store(#[from] strata_core::Error),

    /// A recorded event could not be decoded into the projection's event type.
    #[error(transparent)]
    Decode(#[from] DecodeError),

    /// The projection itself refused or failed (its own words).
    #[error("{0}")]
    Failed(String),

    /// Folding one event in failed; the projection stopped just before it.
    #[error(
        "projection `{projection}` failed on the event at position {position} \
         (version {version} of `{stream}`, type `{event_type}`): {source}; fix the \
         projection or the event, then rebuild or restart it"
    )]
    Event {
        /// The projection's name.
        projection: String,
        /// Where the event is in `$all`.
        position: Position,
        /// Its stream.
        stream: StreamId,
        /// Its version in the stream.
        version: Version,
        /// Its type.
        event_type: String,
        /// What went wrong.
        #[source]
        source: Box<ProjectionError>,
    },

    /// The projection's runner is not running any more.
    #[error("projection `{projection}` is not running: {reason}")]
    Stopped {
        /// The projection's name.
        projection: String,
        /// Why it stopped.
        reason: String,
    },
}

impl ProjectionError {
    /// Shorthand for [`ProjectionError::Failed`].
    pub fn failed(reason: impl Into<String>) -> Self {
        ProjectionError::Failed(reason.into())
    }

    /// Ties an error to the event that caused it.
    pub fn at(projection: &str, event: &RecordedEvent, source: ProjectionError) -> Self {
        ProjectionError::Event {
            projection: projection.to_owned(),
            position: event.position,
            stream: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            source: Box::new(source),
        }
    }
}

/// A read model folded from recorded events.
///
/// `update` is synchronous on purpose: it is the hot path (a runner folds
/// millions of events a second through it) and a fold should only touch
/// the projection's own state. A projection that writes somewhere durable
/// buffers its changes in `update` and writes them in
/// [`commit`](Projection::commit), which its runner calls, and awaits,
/// before every checkpoint it saves.
///
/// ```
/// use strata::{Projection, ProjectionError, ReadFilter, RecordedEvent};
///
/// #[derive(Default)]
/// struct Deposits { count: u64 }
///
/// impl Projection for Deposits {
///     fn name(&self) -> &str { "deposits" }
///     fn filter(&self) -> ReadFilter { ReadFilter::all().event_types(["MoneyDeposited"]) }
///     fn update(&mut self, _event: &RecordedEvent) -> Result<(), ProjectionError> {
///         self.count += 1;
///         Ok(())
///     }
///     fn reset(&mut self) { self.count = 0; }
/// }
/// ```
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The projection's stable name: its checkpoint is kept under it, and a
    /// [`QueryModel`](crate::QueryModel) finds it by it.
    fn name(&self) -> &str;

    /// The events of `$all` the projection wants (every event by default).
    /// The runner reads with it, so the store's indexes do the filtering.
    fn filter(&self) -> ReadFilter {
        ReadFilter::all()
    }

    /// A dynamic-consistency-boundary query the events must also match
    /// (none by default): only events of user streams whose type and tags
    /// match it are folded in (`docs/adr/0022-dynamic-consistency-boundaries.md`).
    /// The runner catches up with the store's query reads and follows a
    /// query-filtered subscription; the events it skips still move its
    /// checkpoint, as those the filter skips do.
    ///
    /// ```
    /// use strata::dcb::{Query, QueryItem, Tag};
    /// use strata::{Projection, ProjectionError, RecordedEvent};
    ///
    /// #[derive(Default)]
    /// struct Course { students: u64 }
    ///
    /// impl Projection for Course {
    ///     fn name(&self) -> &str { "course-c1" }
    ///     fn dcb_query(&self) -> Option<Query> {
    ///         let item = QueryItem::new(["StudentSubscribed"], [Tag::new("course:c1").unwrap()]);
    ///         Some(Query::new(vec![item]).unwrap())
    ///     }
    ///     fn update(&mut self, _event: &RecordedEvent) -> Result<(), ProjectionError> {
    ///         self.students += 1;
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) { self.students = 0; }
    /// }
    /// ```
    fn dcb_query(&self) -> Option<Query> {
        None
    }

    /// Folds one event in. Events arrive in position order; after a crash
    /// some may arrive again (at least once), so make this idempotent.
    ///
    /// An error stops the runner at this event (the checkpoint stays before
    /// it): a fold is deterministic, so retrying would fail again.
    fn update(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError>;

    /// Goes back to the initial state `φ₀` (before a rebuild).
    fn reset(&mut self);

    /// Whether the projection's state outlives the process (a table, a
    /// file). Only then does a runner resume it from its saved checkpoint;
    /// a projection kept in memory (the default, `false`) replays from the
    /// start whenever a fresh runner starts it, because a checkpoint would
    /// describe state that died with the previous process.
    fn is_durable(&self) -> bool {
        false
    }

    /// Makes everything folded in so far durable. The runner calls it
    /// before it saves a checkpoint at `position`, and saves nothing if it
    /// fails. Nothing to do for a projection kept in memory (the default).
    async fn commit(&mut self, position: Position) -> Result<(), ProjectionError> {
        let _ = position;
        Ok(())
    }
}

/// A projection over one aggregate's event enum: events arrive decoded
/// (and upcast). Wrap it in [`Typed`] to run it.
///
/// ```
/// use rust_decimal::Decimal;
/// use strata::bank::AccountEvent;
/// use strata::{Projection, ProjectionError, RecordedEvent, Typed, TypedProjection};
///
/// #[derive(Default)]
/// struct TotalDeposited(Decimal);
///
/// impl TypedProjection for TotalDeposited {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "total-deposited" }
///     fn apply(&mut self, event: AccountEvent, _: &RecordedEvent) -> Result<(), ProjectionError> {
///         if let AccountEvent::Deposited { amount } = event {
///             self.0 += amount;
///         }
///         Ok(())
///     }
///     fn reset(&mut self) { self.0 = Decimal::ZERO; }
/// }
///
/// let p = Typed::new(TotalDeposited::default());
/// // By default it reads only the enum's event types.
/// assert_eq!(
///     p.filter().event_types,
///     ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn", "AccountClosed"]
/// );
/// ```
pub trait TypedProjection: Send + Sync + 'static {
    /// The event enum it folds.
    type Event: DomainEvent;

    /// The projection's stable name (see [`Projection::name`]).
    fn name(&self) -> &str;

    /// The events it wants; by default every event whose type is one of
    /// [`Self::Event`]'s variants.
    fn filter(&self) -> ReadFilter {
        ReadFilter::all().event_types(event_types_of::<Self::Event>().iter().copied())
    }

    /// The DCB query its events must also match; see [`Projection::dcb_query`].
    fn dcb_query(&self) -> Option<Query> {
        None
    }

    /// Folds one decoded event in; `recorded` gives its stream, version,
    /// position and metadata. Must be idempotent (see [`Projection::update`]).
    fn apply(
        &mut self,
        event: Self::Event,
        recorded: &RecordedEvent,
    ) -> Result<(), ProjectionError>;

    /// Goes back to the initial state.
    fn reset(&mut self);

    /// See [`Projection::is_durable`].
    fn is_durable(&self) -> bool {
        false
    }
}

/// Runs a [`TypedProjection`] as a [`Projection`]: decodes each recorded
/// event with the framework's codec, through its [`Upcasters`].
///
/// Events whose type is not one of the enum's variants are skipped (a
/// custom filter may let them through); an event of a known type that
/// does not decode stops the projection with [`ProjectionError::Decode`].
/// It dereferences to the wrapped projection.
#[derive(Clone, Debug)]
pub struct Typed<P> {
    inner: P,
    upcasters: Upcasters,
    types: &'static [&'static str],
}

impl<P: TypedProjection> Typed<P> {
    /// Wraps `projection`, with no upcasters.
    pub fn new(projection: P) -> Self {
        Typed {
            inner: projection,
            upcasters: Upcasters::new(),
            types: event_types_of::<P::Event>(),
        }
    }

    /// Upcasts old events with `upcasters` before decoding them.
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The wrapped projection.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Unwraps it.
    pub fn into_inner(self) -> P {
        self.inner
    }
}

impl<P> Deref for Typed<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.inner
    }
}

impl<P> DerefMut for Typed<P> {
    fn deref_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl<P: TypedProjection> Projection for Typed<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> ReadFilter {
        self.inner.filter()
    }

    fn dcb_query(&self) -> Option<Query> {
        self.inner.dcb_query()
    }

    fn update(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if !self.types.is_empty() && !self.types.contains(&event.event_type.as_str()) {
            return Ok(());
        }
        let decoded: P::Event = self.upcasters.decode(event)?;
        self.inner.apply(decoded, event)
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }
}

/// The event type names of a domain event enum: its variants' serde names
/// (after `#[serde(rename)]`), in declaration order. Empty when `E` does
/// not deserialize as an enum.
///
/// ```
/// use strata::bank::AccountEvent;
/// assert_eq!(strata::projection::event_types_of::<AccountEvent>()[1], "MoneyDeposited");
/// ```
pub fn event_types_of<E: DomainEvent>() -> &'static [&'static str] {
    let mut names = None;
    // A derived `Deserialize` for an enum hands its variant names to
    // `deserialize_enum`; this deserializer keeps them and refuses the rest.
    let _ = E::deserialize(VariantNames(&mut names));
    names.unwrap_or(&[])
}

struct VariantNames<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct NamesOnly;

impl fmt::Display for NamesOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("only the variant names are read")
    }
}

impl std::error::Error for NamesOnly {}

impl de::Error for NamesOnly {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NamesOnly
    }
}

impl<'de> de::Deserializer<'de> for VariantNames<'_> {
    type Error = NamesOnly;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, NamesOnly> {
        Err(NamesOnly)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, NamesOnly> {
        *self.0 = Some(variants);
        Err(NamesOnly)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NamesOnly> {
        // A transparent wrapper around the event enum.
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    enum Ev {
        A,
        #[serde(rename = "Bee")]
        B {
            x: u32,
        },
    }
    impl DomainEvent for Ev {}

    #[derive(Serialize, Deserialize)]
    struct NotAnEnum {
        x: u32,
    }
    impl DomainEvent for NotAnEnum {}

    #[test]
    fn variant_names_follow_serde_renames() {
        assert_eq!(event_types_of::<Ev>(), ["A", "Bee"]);
        assert!(event_types_of::<NotAnEnum>().is_empty());
    }
}
