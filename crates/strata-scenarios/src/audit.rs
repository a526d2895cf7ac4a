//! Audit trail: who did what to which resource, and what the
//! system did, with queries by user, by resource and by time answered from
//! secondary indexes, and tamper evidence from a SHA-256 hash
//! chain.
//!
//! An [`AuditLog`] lives in stream `audit-{log}` (one chain per log: a
//! service, a tenant). Every [`AuditEvent`] carries its place in the chain:
//! `seq` (1, 2, ...), `prev_hash` (the hash of the event before it, or
//! [`GENESIS_HASH`]) and `hash` = SHA-256 of the event's JSON with `hash`
//! left empty (see [`AuditEvent::compute_hash`]) — so the hash covers the
//! content, the sequence number and the link to the predecessor. The
//! aggregate computes the link in `handle`, from the state it loaded; the
//! repository's expected-version guard makes concurrent writers take turns,
//! so the chain never forks.
//!
//! [`verify_audit_chain`] reads a stream and checks every link; it names the
//! first event that is:
//!
//! - **modified**: its stored hash is not the hash of its content
//!   ([`TamperKind::HashMismatch`]); or its hash was recomputed, and then the
//!   next event's `prev_hash` does not match ([`TamperKind::BrokenLink`]);
//! - **removed**: the next event's `seq` is not the one expected
//!   ([`TamperKind::OutOfSequence`]);
//! - **reordered**: the same, at the first event out of place.
//!
//! A chain proves the order and content of what is there, not that nothing
//! was cut off the end, and anyone who can write can recompute a whole
//! forged tail: keep the [`ChainHead`] (count and last hash) somewhere else
//! — another system, a signed receipt — and compare it with
//! [`verify_events_against`] to catch both.
//!
//! [`AuditIndex`] is the read side: every audit event with indexes by user,
//! by resource and by time, so a query touches only its answers.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use strata_scenarios::audit::{AuditCommand, AuditEvent, AuditLog, GENESIS_HASH};
//! use strata::Aggregate;
//!
//! let log = AuditLog::default();
//! let events = log
//!     .handle(&AuditCommand::UserAction {
//!         user_id: "ada".into(),
//!         action: "read".into(),
//!         resource: "report-7".into(),
//!         timestamp: Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap(),
//!     })
//!     .unwrap();
//! let AuditEvent::UserAction { seq, prev_hash, hash, .. } = &events[0] else { unreachable!() };
//! assert_eq!((*seq, prev_hash.as_str()), (1, GENESIS_HASH));
//! assert_eq!(hash, &events[0].compute_hash());
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_core::{
    Direction, EventId, EventStore, Position, ReadFilter, RecordedEvent, StreamId, Version,
};

use strata::aggregate::Aggregate;
use strata::event::{self, DomainEvent};
use strata::projection::{event_types_of, ProjectionError, TypedProjection};
use strata::query::Queryable;

/// The `prev_hash` of the first event of a chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest user id, action, resource or event type, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;
/// Events per read while verifying a chain.
pub const VERIFY_PAGE_EVENTS: usize = 1_024;
/// Most records one [`AuditCommand::Batch`] may hold (well under the
/// stores' default `max_events_per_append`).
pub const MAX_BATCH_RECORDS: usize = 1_024;

/// What happened, with its place in the chain (`AuditEvent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AuditEvent {
    /// A user did something to a resource.
    UserAction {
        /// Who.
        user_id: String,
        /// What (`read`, `update`, `delete`, ...).
        action: String,
        /// To what.
        resource: String,
        /// When, as the caller says.
        timestamp: DateTime<Utc>,
        /// Its place in the chain, from 1.
        seq: u64,
        /// The hash of the event before it ([`GENESIS_HASH`] for the first).
        prev_hash: String,
        /// SHA-256 of this event with `hash` empty, in lower-case hex.
        hash: String,
    },
    /// The system did something.
    SystemEvent {
        /// What kind of thing (`backup`, `key-rotation`, ...).
        event_type: String,
        /// Anything more, as JSON.
        details: serde_json::Value,
        /// When, as the caller says.
        timestamp: DateTime<Utc>,
        /// Its place in the chain, from 1.
        seq: u64,
        /// The hash of the event before it.
        prev_hash: String,
        /// SHA-256 of this event with `hash` empty.
        hash: String,
    },
}

impl DomainEvent for AuditEvent {}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

impl AuditEvent {
    /// Its place in the chain.
    pub fn seq(&self) -> u64 {
        match self {
            AuditEvent::UserAction { seq, .. } | AuditEvent::SystemEvent { seq, .. } => *seq,
        }
    }

    /// The hash of its predecessor, as it records it.
    pub fn prev_hash(&self) -> &str {
        match self {
            AuditEvent::UserAction { prev_hash, .. }
            | AuditEvent::SystemEvent { prev_hash, .. } => prev_hash,
        }
    }

    /// Its hash, as it records it.
    pub fn hash(&self) -> &str {
        match self {
            AuditEvent::UserAction { hash, .. } | AuditEvent::SystemEvent { hash, .. } => hash,
        }
    }

    /// When it happened, as the caller said.
    pub fn timestamp(&self) -> DateTime<Utc> {
        match self {
            AuditEvent::UserAction { timestamp, .. }
            | AuditEvent::SystemEvent { timestamp, .. } => *timestamp,
        }
    }

    /// What its hash must be: SHA-256 over its JSON (variant name, every
    /// field in declaration order, `hash` empty). The JSON is the stored
    /// payload's shape, so a reader in any language can recompute it.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        match &mut unhashed {
            AuditEvent::UserAction { hash, .. } | AuditEvent::SystemEvent { hash, .. } => {
                hash.clear();
            }
        }
        // Serializing strings, numbers, times and JSON values cannot fail.
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        sha256_hex(&bytes)
    }

    fn sealed(mut self) -> Self {
        let h = self.compute_hash();
        match &mut self {
            AuditEvent::UserAction { hash, .. } | AuditEvent::SystemEvent { hash, .. } => {
                *hash = h;
            }
        }
        self
    }
}

/// What can be recorded in an audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum AuditCommand {
    /// Records a user's action.
    UserAction {
        /// Who.
        user_id: String,
        /// What.
        action: String,
        /// To what.
        resource: String,
        /// When.
        timestamp: DateTime<Utc>,
    },
    /// Records a system event.
    SystemEvent {
        /// What kind.
        event_type: String,
        /// Details.
        details: serde_json::Value,
        /// When.
        timestamp: DateTime<Utc>,
    },
    /// Records several user actions and system events, chained in order,
    /// in one atomic append (one fsync on a durable store): how a gateway
    /// that collects records writes them. All or none are recorded.
    Batch {
        /// At most [`MAX_BATCH_RECORDS`]; no batches inside.
        records: Vec<AuditCommand>,
    },
}

/// Why an audit log refuses a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// An empty or over-long field.
    #[error("the {field} must be 1 to {MAX_FIELD_BYTES} bytes")]
    InvalidField {
        /// Which field.
        field: &'static str,
    },
    /// A batch over [`MAX_BATCH_RECORDS`].
    #[error("a batch holds at most {MAX_BATCH_RECORDS} records, got {records}; split it")]
    BatchTooLarge {
        /// How many it held.
        records: usize,
    },
    /// A batch inside a batch.
    #[error("a batch cannot hold another batch; flatten it")]
    NestedBatch,
}

fn check(field: &'static str, value: &str) -> Result<(), AuditError> {
    if value.trim().is_empty() || value.len() > MAX_FIELD_BYTES {
        return Err(AuditError::InvalidField { field });
    }
    Ok(())
}

/// An audit log: the head of its hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    count: u64,
    head: String,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            count: 0,
            head: GENESIS_HASH.to_owned(),
        }
    }
}

impl AuditLog {
    /// How many events the chain has.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of its last event ([`GENESIS_HASH`] if none).
    pub fn head(&self) -> &str {
        &self.head
    }
}

impl Aggregate for AuditLog {
    const TYPE: &'static str = "audit";
    type Command = AuditCommand;
    type Event = AuditEvent;
    type Error = AuditError;

    fn handle(&self, command: &AuditCommand) -> Result<Vec<AuditEvent>, AuditError> {
        if let AuditCommand::Batch { records } = command {
            if records.len() > MAX_BATCH_RECORDS {
                return Err(AuditError::BatchTooLarge {
                    records: records.len(),
                });
            }
            // Each record links to the one before it in the batch.
            let mut state = self.clone();
            let mut out = Vec::with_capacity(records.len());
            for record in records {
                if matches!(record, AuditCommand::Batch { .. }) {
                    return Err(AuditError::NestedBatch);
                }
                for e in state.handle(record)? {
                    state.apply(&e);
                    out.push(e);
                }
            }
            return Ok(out);
        }
        let (seq, prev_hash) = (self.count + 1, self.head.clone());
        let event = match command {
            AuditCommand::UserAction {
                user_id,
                action,
                resource,
                timestamp,
            } => {
                check("user id", user_id)?;
                check("action", action)?;
                check("resource", resource)?;
                AuditEvent::UserAction {
                    user_id: user_id.clone(),
                    action: action.clone(),
                    resource: resource.clone(),
                    timestamp: *timestamp,
                    seq,
                    prev_hash,
                    hash: String::new(),
                }
            }
            AuditCommand::SystemEvent {
                event_type,
                details,
                timestamp,
            } => {
                check("event type", event_type)?;
                AuditEvent::SystemEvent {
                    event_type: event_type.clone(),
                    details: details.clone(),
                    timestamp: *timestamp,
                    seq,
                    prev_hash,
                    hash: String::new(),
                }
            }
            AuditCommand::Batch { .. } => return Err(AuditError::NestedBatch),
        };
        Ok(vec![event.sealed()])
    }

    fn apply(&mut self, event: &AuditEvent) {
        self.count = event.seq();
        self.head = event.hash().to_owned();
    }
}

/// The end of a verified chain: keep it elsewhere to detect truncation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// How many events it has.
    pub count: u64,
    /// The hash of the last one ([`GENESIS_HASH`] if none).
    pub hash: String,
}

/// What is wrong with an event of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TamperKind {
    /// It is not an audit event or does not decode as one.
    Undecodable {
        /// Why.
        reason: String,
    },
    /// Its `seq` is not the next one: an event before it was removed, or
    /// events were reordered or inserted.
    OutOfSequence {
        /// The `seq` due here.
        expected: u64,
        /// The `seq` it has.
        found: u64,
    },
    /// Its `prev_hash` is not the hash of the event before it: that event
    /// (or this link) was changed.
    BrokenLink {
        /// The hash of the event before it.
        expected: String,
        /// What it records.
        found: String,
    },
    /// Its content does not hash to its recorded `hash`: it was modified.
    HashMismatch {
        /// The hash of its content.
        computed: String,
        /// What it records.
        recorded: String,
    },
    /// The chain ends elsewhere than the head kept outside: events were
    /// removed from the end or the tail was forged.
    HeadMismatch {
        /// The head kept outside.
        expected: ChainHead,
        /// The head found.
        found: ChainHead,
    },
}

/// The first bad event of a chain, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperReport {
    /// Its 1-based place in the sequence read (`count + 1` for a
    /// [`TamperKind::HeadMismatch`] at the end).
    pub index: u64,
    /// Its stream version (0 for a head mismatch).
    pub version: Version,
    /// Its event id, if there is an event.
    pub event_id: Option<EventId>,
    /// What is wrong.
    pub kind: TamperKind,
}

impl std::error::Error for TamperReport {}

impl fmt::Display for TamperReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = match self.event_id {
            Some(id) => format!("event #{} (version {}, id {id})", self.index, self.version),
            None => format!("the end of the chain, after {} events", self.index - 1),
        };
        match &self.kind {
            TamperKind::Undecodable { reason } => {
                write!(f, "{at} is not a readable audit event: {reason}")
            }
            TamperKind::OutOfSequence { expected, found } => write!(
                f,
                "{at} has seq {found} where seq {expected} is due: an event was removed, \
                 inserted or moved"
            ),
            TamperKind::BrokenLink { expected, found } => write!(
                f,
                "{at} links to {found} but the event before it hashes to {expected}: \
                 the event before it was changed"
            ),
            TamperKind::HashMismatch { computed, recorded } => write!(
                f,
                "{at} was modified: its content hashes to {computed}, it records {recorded}"
            ),
            TamperKind::HeadMismatch { expected, found } => write!(
                f,
                "{at}: the chain ends at #{} {} but the head kept outside is #{} {}: \
                 events were cut off or forged",
                found.count, found.hash, expected.count, expected.hash
            ),
        }
    }
}

/// Why [`verify_audit_chain`] could not vouch for a chain.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain was tampered with.
    #[error("audit chain tampered with: {0}")]
    Tampered(#[from] TamperReport),
    /// The store could not be read.
    #[error("cannot read the audit chain: {0}")]
    Store(#[from] strata_core::Error),
}

/// Checks a chain one event at a time (for sequences read in pages).
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    count: u64,
    head: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            count: 0,
            head: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainVerifier {
    /// A verifier at the start of a chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event of the chain.
    pub fn check(&mut self, recorded: &RecordedEvent) -> Result<(), TamperReport> {
        let index = self.count + 1;
        let report = |kind| TamperReport {
            index,
            version: recorded.version,
            event_id: Some(recorded.id),
            kind,
        };
        let event: AuditEvent =
            if event_types_of::<AuditEvent>().contains(&recorded.event_type.as_str()) {
                event::decode(&recorded.event_type, &recorded.data).map_err(|e| {
                    report(TamperKind::Undecodable {
                        reason: e.to_string(),
                    })
                })?
            } else {
                return Err(report(TamperKind::Undecodable {
                    reason: format!("type `{}` is not an audit event", recorded.event_type),
                }));
            };
        if event.seq() != index {
            return Err(report(TamperKind::OutOfSequence {
                expected: index,
                found: event.seq(),
            }));
        }
        if event.prev_hash() != self.head {
            return Err(report(TamperKind::BrokenLink {
                expected: self.head.clone(),
                found: event.prev_hash().to_owned(),
            }));
        }
        let computed = event.compute_hash();
        if computed != event.hash() {
            return Err(report(TamperKind::HashMismatch {
                computed,
                recorded: event.hash().to_owned(),
            }));
        }
        self.count = index;
        self.head = computed;
        Ok(())
    }

    /// The head of what was checked so far.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            count: self.count,
            hash: self.head.clone(),
        }
    }

    /// Compares the head reached with one kept outside.
    pub fn finish_against(&self, expected: &ChainHead) -> Result<ChainHead, TamperReport> {
        let found = self.head();
        if &found != expected {
            return Err(TamperReport {
                index: self.count + 1,
                version: 0,
                event_id: None,
                kind: TamperKind::HeadMismatch {
                    expected: expected.clone(),
                    found,
                },
            });
        }
        Ok(found)
    }
}

/// Checks a whole chain given as a sequence of recorded events (as read
/// from a stream, oldest first) and returns its head.
pub fn verify_events<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<ChainHead, TamperReport> {
    let mut verifier = ChainVerifier::new();
    for e in events {
        verifier.check(e)?;
    }
    Ok(verifier.head())
}

/// Like [`verify_events`], and the chain must end at `expected` (a head
/// kept outside): catches events cut off the end and forged tails.
pub fn verify_events_against<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    expected: &ChainHead,
) -> Result<ChainHead, TamperReport> {
    let mut verifier = ChainVerifier::new();
    for e in events {
        verifier.check(e)?;
    }
    verifier.finish_against(expected)
}

/// Reads audit stream `stream` from the start and checks every link of its
/// hash chain (see the module docs); returns its head, or names the first
/// bad event. A stream that does not exist is an empty chain.
pub async fn verify_audit_chain<S: EventStore + ?Sized>(
    store: &S,
    stream: &StreamId,
) -> Result<ChainHead, VerifyError> {
    let page = VERIFY_PAGE_EVENTS.min(store.limits().max_read_count).max(1);
    let mut verifier = ChainVerifier::new();
    let mut from: Version = 1;
    loop {
        let events = match store
            .read_stream(stream, from, page, Direction::Forward)
            .await
        {
            Ok(events) => events,
            Err(strata_core::Error::StreamNotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for e in &events {
            verifier.check(e)?;
        }
        match events.last() {
            Some(last) if events.len() == page => from = last.version + 1,
            _ => return Ok(verifier.head()),
        }
    }
}

/// Most audit chains [`verify_all_audit_chains`] checks in one call (their
/// names are held in memory).
pub const MAX_VERIFIED_CHAINS: usize = 100_000;

/// One chain checked by [`verify_all_audit_chains`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCheck {
    /// The chain's stream.
    pub stream: StreamId,
    /// Its head, or its first bad event.
    pub outcome: Result<ChainHead, TamperReport>,
}

/// Every audit chain of a store, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreVerification {
    /// Each chain, by stream name.
    pub chains: Vec<ChainCheck>,
}

impl StoreVerification {
    /// Events in the intact chains.
    pub fn intact_events(&self) -> u64 {
        self.chains
            .iter()
            .filter_map(|c| c.outcome.as_ref().ok())
            .map(|h| h.count)
            .sum()
    }

    /// The chains that were tampered with, each with its first bad event.
    pub fn tampered(&self) -> impl Iterator<Item = (&StreamId, &TamperReport)> {
        self.chains
            .iter()
            .filter_map(|c| c.outcome.as_ref().err().map(|r| (&c.stream, r)))
    }

    /// The first tampered chain (by stream name) and its first bad event.
    pub fn first_tampered(&self) -> Option<(&StreamId, &TamperReport)> {
        self.tampered().next()
    }

    /// Whether every chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_tampered().is_none()
    }
}

/// Finds every audit chain of `store` (every stream of category
/// [`AuditLog::TYPE`] that `$all` holds) and checks each with
/// [`verify_audit_chain`]. A tampered chain does not stop the check: it is
/// reported in [`StoreVerification::chains`] with its first bad event;
/// only a store failure (or more than [`MAX_VERIFIED_CHAINS`] chains) is an
/// error.
///
/// Chains are found from `$all` by category only, never by event type, so
/// an event whose type was changed still points at its chain.
pub async fn verify_all_audit_chains<S: EventStore + ?Sized>(
    store: &S,
) -> Result<StoreVerification, strata_core::Error> {
    let page = VERIFY_PAGE_EVENTS.min(store.limits().max_read_count).max(1);
    let filter = ReadFilter::all().category(AuditLog::TYPE);
    let mut streams = BTreeSet::new();
    let mut from = Position::START.next();
    loop {
        let events = store.read_all(from, page, &filter).await?;
        for e in &events {
            if !streams.contains(&e.stream_id) {
                if streams.len() == MAX_VERIFIED_CHAINS {
                    return Err(strata_core::Error::invalid(format!(
                        "the store holds more than {MAX_VERIFIED_CHAINS} audit chains; verify \
                         them one at a time with verify_audit_chain"
                    )));
                }
                streams.insert(e.stream_id.clone());
            }
        }
        match events.last() {
            Some(last) if events.len() == page => from = last.position.next(),
            _ => break,
        }
    }
    let mut chains = Vec::with_capacity(streams.len());
    for stream in streams {
        let outcome = match verify_audit_chain(store, &stream).await {
            Ok(head) => Ok(head),
            Err(VerifyError::Tampered(report)) => Err(report),
            Err(VerifyError::Store(e)) => return Err(e),
        };
        chains.push(ChainCheck { stream, outcome });
    }
    Ok(StoreVerification { chains })
}

/// One indexed audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    /// Its log's stream.
    pub stream: StreamId,
    /// Its position in `$all`.
    pub position: Position,
    /// The event.
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The user, for a user action.
    pub fn user_id(&self) -> Option<&str> {
        match &self.event {
            AuditEvent::UserAction { user_id, .. } => Some(user_id),
            AuditEvent::SystemEvent { .. } => None,
        }
    }

    /// The resource, for a user action.
    pub fn resource(&self) -> Option<&str> {
        match &self.event {
            AuditEvent::UserAction { resource, .. } => Some(resource),
            AuditEvent::SystemEvent { .. } => None,
        }
    }
}

/// Every audit event, with secondary indexes: by user, by
/// resource (lists of record numbers, in `$all` order) and by timestamp (an
/// ordered set), so each query reads only its answers.
///
/// Idempotent: each log's last folded version is kept and events at or
/// below it are ignored.
#[derive(Clone, Debug, Default)]
pub struct AuditIndex {
    records: Vec<AuditRecord>,
    by_user: HashMap<String, Vec<usize>>,
    by_resource: HashMap<String, Vec<usize>>,
    by_time: BTreeSet<(DateTime<Utc>, usize)>,
    versions: HashMap<StreamId, Version>,
}

/// The index projection's name in a query model.
pub const AUDIT_INDEX: &str = "audit-index";

impl AuditIndex {
    /// Nothing indexed.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events are indexed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record, in `$all` order (for full scans and checks).
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// The actions of `user`, in `$all` order.
    pub fn by_user(&self, user: &str) -> Vec<&AuditRecord> {
        self.pick(self.by_user.get(user))
    }

    /// The actions on `resource`, in `$all` order.
    pub fn by_resource(&self, resource: &str) -> Vec<&AuditRecord> {
        self.pick(self.by_resource.get(resource))
    }

    /// The events with `from <= timestamp < to`, by timestamp.
    pub fn in_range(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<&AuditRecord> {
        if from >= to {
            return Vec::new();
        }
        self.by_time
            .range((from, 0)..(to, 0))
            .map(|(_, i)| &self.records[*i])
            .collect()
    }

    /// The actions of `user` with `from <= timestamp < to`, in `$all`
    /// order: the user index, then a filter on its entries.
    pub fn by_user_in_range(
        &self,
        user: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<&AuditRecord> {
        self.by_user(user)
            .into_iter()
            .filter(|r| (from..to).contains(&r.event.timestamp()))
            .collect()
    }

    fn pick(&self, ids: Option<&Vec<usize>>) -> Vec<&AuditRecord> {
        ids.map(|ids| ids.iter().map(|i| &self.records[*i]).collect())
            .unwrap_or_default()
    }
}

impl TypedProjection for AuditIndex {
    type Event = AuditEvent;

    fn name(&self) -> &str {
        AUDIT_INDEX
    }

    fn filter(&self) -> ReadFilter {
        ReadFilter::all()
            .category(AuditLog::TYPE)
            .event_types(event_types_of::<AuditEvent>().iter().copied())
    }

    fn apply(
        &mut self,
        event: AuditEvent,
        recorded: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let last = self.versions.entry(recorded.stream_id.clone()).or_default();
        if recorded.version <= *last {
            return Ok(()); // delivered again
        }
        *last = recorded.version;
        let i = self.records.len();
        if let AuditEvent::UserAction {
            user_id, resource, ..
        } = &event
        {
            self.by_user.entry(user_id.clone()).or_default().push(i);
            self.by_resource
                .entry(resource.clone())
                .or_default()
                .push(i);
        }
        self.by_time.insert((event.timestamp(), i));
        self.records.push(AuditRecord {
            stream: recorded.stream_id.clone(),
            position: recorded.position,
            event,
        });
        Ok(())
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// What can be asked of the audit index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuditQuery {
    /// A user's actions.
    ByUser(String),
    /// The actions on a resource.
    ByResource(String),
    /// Events with `from <= timestamp < to`.
    InRange {
        /// Inclusive.
        from: DateTime<Utc>,
        /// Exclusive.
        to: DateTime<Utc>,
    },
}

impl Queryable for AuditIndex {
    type Query = AuditQuery;
    type Answer = Vec<AuditRecord>;

    fn query(&self, query: &AuditQuery) -> Vec<AuditRecord> {
        let found = match query {
            AuditQuery::ByUser(u) => self.by_user(u),
            AuditQuery::ByResource(r) => self.by_resource(r),
            AuditQuery::InRange { from, to } => self.in_range(*from, *to),
        };
        found.into_iter().cloned().collect()
    }
}

pub mod demo;
