//! The checks after a power cut: every acknowledged append present with
//! its ids, versions and positions, nothing partial, versions contiguous,
//! acknowledged snapshots and checkpoints readable (or the one in doubt).
//! Each check settles the operation in doubt into the model.

use std::collections::{BTreeMap, HashMap, HashSet};

use strata_core::{
    CheckpointStore, EventId, EventStore, Position, ReadFilter, SnapshotStore, StreamId,
};

use super::model::{Doubt, Model};
use super::workload::{snapshot_state, Stores};
use super::Stop;
use crate::common::Acked;

/// Where each event is: stream, version, position.
type Seen = HashMap<EventId, (StreamId, u64, Position)>;

/// Reads `$all`, checking that positions increase and every stream's
/// versions run 1, 2, 3...
async fn read_everything(stores: &Stores) -> Result<Seen, Stop> {
    let mut seen = Seen::new();
    let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut from = Position::START;
    let mut last: Option<Position> = None;
    loop {
        let page = stores
            .log
            .read_all(from, 1000, &ReadFilter::all())
            .await
            .map_err(Stop::from_read)?;
        let Some(end) = page.last().map(|e| e.position) else {
            break;
        };
        for e in &page {
            if last.is_some_and(|l| e.position <= l) {
                return Err(Stop::bug(format!(
                    "$all goes back from {last:?} to {:?}",
                    e.position
                )));
            }
            last = Some(e.position);
            let v = versions.entry(e.stream_id.clone()).or_insert(0);
            if e.version != *v + 1 {
                return Err(Stop::bug(format!(
                    "stream {} jumps from version {} to {} at {:?}",
                    e.stream_id, v, e.version, e.position
                )));
            }
            *v = e.version;
            seen.insert(e.id, (e.stream_id.clone(), e.version, e.position));
        }
        from = end.next();
    }
    Ok(seen)
}

fn check_acked(a: &Acked, seen: &Seen) -> Result<(), Stop> {
    for (k, id) in a.ids.iter().enumerate() {
        let v = a.first_version + k as u64;
        let Some((s, got_v, p)) = seen.get(id) else {
            return Err(Stop::bug(format!(
                "acknowledged append lost: event {id} of {} version {v} (append {a:?})",
                a.stream
            )));
        };
        if s != &a.stream || *got_v != v {
            return Err(Stop::bug(format!(
                "event {id} acknowledged as {} version {v} is {s} version {got_v}",
                a.stream
            )));
        }
        let want = match (k == 0, k + 1 == a.ids.len()) {
            (true, _) => Some(a.first_position),
            (_, true) => Some(a.last_position),
            _ => None,
        };
        if want.is_some_and(|w| w != *p) {
            return Err(Stop::bug(format!(
                "event {id} acknowledged at {want:?} is at {p:?}"
            )));
        }
    }
    Ok(())
}

/// `Durability::None`: the appends acknowledged since the last flush
/// survive as a prefix, each whole. Returns whether any was lost.
fn settle_unflushed(seen: &Seen, model: &mut Model) -> Result<bool, Stop> {
    let mut lost = false;
    for a in std::mem::take(&mut model.unflushed) {
        let present = a.ids.iter().filter(|id| seen.contains_key(*id)).count();
        if present == 0 {
            lost = true;
            continue;
        }
        if present != a.ids.len() {
            return Err(Stop::bug(format!(
                "a partial unflushed append survived: {present} of its events ({a:?})"
            )));
        }
        if lost {
            return Err(Stop::bug(format!(
                "an unflushed append survived an earlier lost one: {a:?}"
            )));
        }
        check_acked(&a, seen)?;
        model.acked.push(a);
    }
    Ok(lost)
}

/// The append in doubt: whole or absent; if whole, it is acknowledged now.
fn settle_append(
    parts: &[(StreamId, Vec<EventId>)],
    seen: &Seen,
    model: &mut Model,
    earlier_lost: bool,
) -> Result<(), Stop> {
    let all: Vec<&EventId> = parts.iter().flat_map(|(_, ids)| ids).collect();
    let present = all.iter().filter(|id| seen.contains_key(**id)).count();
    if present == 0 {
        return Ok(());
    }
    if present != all.len() {
        return Err(Stop::bug(format!(
            "a partial append survived: {present} of its {} events ({parts:?})",
            all.len()
        )));
    }
    if earlier_lost {
        return Err(Stop::bug(format!(
            "the append in doubt survived an earlier lost unflushed one: {parts:?}"
        )));
    }
    for (s, ids) in parts {
        let at = |id: &EventId| seen.get(id).map(|(_, v, p)| (*v, *p));
        let (Some((v, first)), Some((_, last))) =
            (ids.first().and_then(at), ids.last().and_then(at))
        else {
            continue;
        };
        model.acked.push(Acked {
            stream: s.clone(),
            first_version: v,
            ids: ids.clone(),
            first_position: first,
            last_position: last,
        });
    }
    Ok(())
}

/// Checks the log against the model and settles an append in doubt.
pub async fn check_log(stores: &Stores, model: &mut Model) -> Result<(), Stop> {
    let seen = read_everything(stores).await?;
    for a in &model.acked {
        check_acked(a, &seen)?;
    }
    let lost = settle_unflushed(&seen, model)?;
    if let Some(Doubt::Append(parts)) = &model.doubt {
        settle_append(&parts.clone(), &seen, model, lost)?;
    }
    let known: HashSet<&EventId> = model.acked.iter().flat_map(|a| &a.ids).collect();
    if let Some((id, (s, v, _))) = seen.iter().find(|(id, _)| !known.contains(id)) {
        return Err(Stop::bug(format!(
            "event {id} ({s} version {v}) was never appended"
        )));
    }
    model.versions.clear();
    for (s, v, _) in seen.values() {
        let e = model.versions.entry(s.clone()).or_insert(0);
        *e = (*e).max(*v);
    }
    for (s, v) in model.versions.clone() {
        let info = stores.log.stream_info(&s).await.map_err(Stop::from_read)?;
        if info.as_ref().map(|i| i.version) != Some(v) {
            return Err(Stop::bug(format!(
                "stream_info of {s} says {info:?}, the log holds version {v}"
            )));
        }
    }
    model.head = stores.log.head_position().await.map_err(Stop::from_read)?;
    Ok(())
}

/// Checks every snapshot the model knows of, settling one in doubt.
pub async fn check_snapshots(stores: &Stores, model: &mut Model) -> Result<(), Stop> {
    let doubt = match &model.doubt {
        Some(Doubt::Snapshot(s, effect)) => Some((s.clone(), *effect)),
        _ => None,
    };
    let mut streams: Vec<StreamId> = model.snapshots.keys().cloned().collect();
    streams.extend(doubt.iter().map(|(s, _)| s.clone()));
    for s in streams {
        let got = stores
            .snapshots
            .load(&s, u64::MAX)
            .await
            .map_err(Stop::from_read)?;
        let acked = model.snapshots.get(&s).copied().flatten();
        let in_doubt = doubt.as_ref().filter(|(d, _)| d == &s).map(|(_, e)| *e);
        let version = got.as_ref().map(|g| g.version);
        if version != acked && Some(version) != in_doubt {
            return Err(Stop::bug(format!(
                "snapshot of {s}: found version {version:?}, acknowledged {acked:?}, in doubt {in_doubt:?}"
            )));
        }
        if let Some(g) = &got {
            if g.state.as_ref() != snapshot_state(&s, g.version).as_slice() {
                return Err(Stop::bug(format!(
                    "snapshot of {s} version {} has the wrong state",
                    g.version
                )));
            }
        }
        model.snapshots.insert(s, version);
    }
    Ok(())
}

/// Checks every checkpoint the model knows of, settling one in doubt.
pub async fn check_checkpoints(stores: &Stores, model: &mut Model) -> Result<(), Stop> {
    let doubt = match &model.doubt {
        Some(Doubt::Checkpoint(n, effect)) => Some((n.clone(), *effect)),
        _ => None,
    };
    let mut names: Vec<String> = model.checkpoints.keys().cloned().collect();
    names.extend(doubt.iter().map(|(n, _)| n.clone()));
    for n in names {
        let got = stores.checkpoints.load(&n).await.map_err(Stop::from_read)?;
        let acked = model.checkpoints.get(&n).copied().flatten();
        let in_doubt = doubt.as_ref().filter(|(d, _)| d == &n).map(|(_, e)| *e);
        if got != acked && Some(got) != in_doubt {
            return Err(Stop::bug(format!(
                "checkpoint {}...: found {got:?}, acknowledged {acked:?}, in doubt {in_doubt:?}",
                &n[..14]
            )));
        }
        model.checkpoints.insert(n, got);
    }
    Ok(())
}

/// Every check; the doubt is settled once all pass.
pub async fn check_all(stores: &Stores, model: &mut Model) -> Result<(), Stop> {
    check_log(stores, model).await?;
    check_snapshots(stores, model).await?;
    check_checkpoints(stores, model).await?;
    model.doubt = None;
    Ok(())
}
