"""The Python KurrentDB client against a Strata gRPC endpoint.

Run by `crates/strata-interop/tests/kurrentdb_python.rs`, which starts the
server and passes its connection string in STRATA_KURRENTDB_URI. Tests
that need a server capability still being added are listed, with the
capability, in `pending.txt` beside this file; the runner deselects them.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid

import pytest

from kurrentdbclient import (
    KurrentDBClient,
    NewEvent,
    NewEvents,
    NewRecord,
    StreamState,
    StreamStateCheck,
)
from kurrentdbclient.events import CaughtUp
from kurrentdbclient.exceptions import (
    ConsistencyChecksFailedError,
    FailedPreconditionError,
    MaximumSubscriptionsReachedError,
    MultiAppendToSameStreamError,
    NotFoundError,
    StreamIsDeletedError,
    StreamTombstonedError,
    WrongCurrentVersionError,
)


@pytest.fixture
def client():
    uri = os.environ["STRATA_KURRENTDB_URI"]
    c = KurrentDBClient(uri)
    yield c
    c.close()


def stream(prefix: str = "py") -> str:
    """A stream name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex}"


def event(n: int, type_: str = "Counted") -> NewEvent:
    return NewEvent(type=type_, data=json.dumps({"n": n}).encode())


def numbers(events) -> list[int]:
    return [json.loads(e.data)["n"] for e in events]


def append_each(client: KurrentDBClient, name: str, ns, type_: str = "Counted"):
    """Appends events one call each (single-event appends use Streams.Append)."""
    position = None
    for n in ns:
        position = client.append_to_stream(
            name, events=event(n, type_), current_version=StreamState.ANY
        )
    return position


def test_append_with_every_expected_state(client):
    s = stream()
    first = client.append_to_stream(
        s, events=event(0), current_version=StreamState.NO_STREAM
    )
    assert first > 0, "append answers the commit position"
    second = client.append_to_stream(s, events=event(1), current_version=0)
    assert second > first
    client.append_to_stream(s, events=event(2), current_version=StreamState.EXISTS)
    client.append_to_stream(s, events=event(3), current_version=StreamState.ANY)
    assert client.get_current_version(s) == 3, "revisions are 0-based"
    with pytest.raises(WrongCurrentVersionError):
        client.append_to_stream(s, events=event(99), current_version=1)
    with pytest.raises(WrongCurrentVersionError):
        client.append_to_stream(
            s, events=event(99), current_version=StreamState.NO_STREAM
        )
    with pytest.raises(WrongCurrentVersionError):
        client.append_to_stream(
            stream(), events=event(0), current_version=StreamState.EXISTS
        )
    assert numbers(client.get_stream(s)) == [0, 1, 2, 3]


def test_events_keep_id_type_content_type_metadata_and_time(client):
    s = stream()
    sent = NewEvent(
        type="Shipped",
        data=b"\x00\x01binary",
        metadata=b'{"$correlationId":"c-1"}',
        content_type="application/octet-stream",
    )
    client.append_to_stream(s, events=sent, current_version=StreamState.NO_STREAM)
    (got,) = client.get_stream(s)
    assert got.id == sent.id
    assert got.type == "Shipped"
    assert got.data == b"\x00\x01binary"
    assert got.metadata == b'{"$correlationId":"c-1"}'
    assert got.content_type == "application/octet-stream"
    assert got.stream_name == s
    assert got.stream_position == 0
    assert got.commit_position > 0
    assert got.recorded_at is not None


def test_read_a_stream_both_ways_from_a_position_with_a_limit(client):
    s = stream()
    append_each(client, s, range(5))
    assert numbers(client.get_stream(s)) == [0, 1, 2, 3, 4]
    assert numbers(client.get_stream(s, stream_position=2)) == [2, 3, 4]
    assert numbers(client.get_stream(s, limit=2)) == [0, 1]
    assert numbers(client.get_stream(s, backwards=True)) == [4, 3, 2, 1, 0]
    assert numbers(client.get_stream(s, backwards=True, stream_position=2)) == [
        2,
        1,
        0,
    ]
    assert numbers(client.get_stream(s, backwards=True, limit=2)) == [4, 3]
    positions = [e.commit_position for e in client.get_stream(s)]
    assert positions == sorted(positions) and len(set(positions)) == 5


def test_reading_a_missing_stream_is_not_found(client):
    with pytest.raises(NotFoundError):
        client.get_stream(stream())
    assert client.get_current_version(stream()) == StreamState.NO_STREAM


def test_read_all_forwards_with_filters(client):
    tag = uuid.uuid4().hex[:8]
    orders, users = f"orders{tag}-1", f"users{tag}-1"
    append_each(client, orders, [0, 1], type_=f"Placed{tag}")
    append_each(client, users, [2], type_=f"Joined{tag}")
    append_each(client, orders, [3], type_=f"Placed{tag}")

    everything = [
        e
        for e in client.read_all(filter_exclude=())
        if e.stream_name in (orders, users)
    ]
    assert numbers(everything) == [0, 1, 2, 3]
    positions = [e.commit_position for e in everything]
    assert positions == sorted(positions)

    by_prefix = client.read_all(
        filter_include=[f"orders{tag}-"],
        filter_by_stream_name=True,
        filter_by_prefix=True,
    )
    assert numbers(by_prefix) == [0, 1, 3]

    by_type_regex = client.read_all(filter_include=[f"Joined{tag}"])
    assert numbers(by_type_regex) == [2]

    from_position = client.read_all(
        commit_position=positions[2],
        filter_include=[f"(orders|users){tag}-.*"],
        filter_by_stream_name=True,
    )
    assert numbers(from_position) == [2, 3], "a read from a position includes it"

    limited = client.read_all(
        filter_include=[f"orders{tag}-"],
        filter_by_stream_name=True,
        filter_by_prefix=True,
        limit=2,
    )
    assert numbers(limited) == [0, 1]


def test_read_all_with_exclude_filters(client):
    # The client sends exclusions, and by default the system events'
    # exclusion, as one look-ahead expression: `^(?!(A|B))`.
    tag = uuid.uuid4().hex[:8]
    orders, users = f"orders{tag}-1", f"users{tag}-1"
    append_each(client, orders, [0], type_=f"Placed{tag}")
    append_each(client, users, [1], type_=f"Joined{tag}")
    default = [e for e in client.read_all() if e.stream_name in (orders, users)]
    assert numbers(default) == [0, 1]
    excluded = [
        e
        for e in client.read_all(filter_exclude=[f"Placed{tag}"])
        if e.stream_name in (orders, users)
    ]
    assert numbers(excluded) == [1]


def test_read_all_backwards(client):
    tag = uuid.uuid4().hex[:8]
    s = f"back{tag}-1"
    append_each(client, s, [0, 1, 2])
    got = client.read_all(
        backwards=True,
        filter_include=[f"back{tag}-"],
        filter_by_stream_name=True,
        filter_by_prefix=True,
    )
    assert numbers(got) == [2, 1, 0]
    assert client.get_commit_position(filter_exclude=()) >= max(
        e.commit_position for e in client.get_stream(s)
    )


def test_append_many_events_in_one_call(client):
    s = stream()
    position = client.append_to_stream(
        s, events=[event(n) for n in range(3)], current_version=StreamState.NO_STREAM
    )
    assert position > 0
    client.append_to_stream(s, events=[event(3), event(4)], current_version=2)
    with pytest.raises(WrongCurrentVersionError):
        client.append_to_stream(s, events=[event(9), event(9)], current_version=2)
    assert numbers(client.get_stream(s)) == [0, 1, 2, 3, 4]
    client.tombstone_stream(s, current_version=StreamState.ANY)
    with pytest.raises(StreamIsDeletedError):
        client.append_to_stream(
            s, events=[event(5), event(6)], current_version=StreamState.ANY
        )


def test_delete_then_append_again(client):
    s = stream()
    append_each(client, s, [0, 1])
    with pytest.raises(WrongCurrentVersionError):
        client.delete_stream(s, current_version=0)
    client.delete_stream(s, current_version=1)
    with pytest.raises(NotFoundError):
        client.get_stream(s)
    client.append_to_stream(s, events=event(2), current_version=StreamState.ANY)
    assert numbers(client.get_stream(s)) == [2]


def test_tombstone_is_final(client):
    s = stream()
    append_each(client, s, [0])
    client.tombstone_stream(s, current_version=StreamState.ANY)
    # A one-event append goes through Streams.Append, whose refusal the
    # client raises as the status it is; the words say why.
    with pytest.raises(FailedPreconditionError, match="is deleted"):
        client.append_to_stream(s, events=event(1), current_version=StreamState.ANY)
    with pytest.raises(StreamIsDeletedError):
        client.get_stream(s)
    with pytest.raises(StreamIsDeletedError):
        client.tombstone_stream(s, current_version=StreamState.ANY)


def test_stream_metadata_round_trips(client):
    s = stream()
    append_each(client, s, range(3))
    assert client.get_stream_metadata(s) == ({}, StreamState.NO_STREAM)
    client.set_stream_metadata(s, metadata={"$maxCount": 2, "owner": "py"})
    metadata, version = client.get_stream_metadata(s)
    assert metadata["$maxCount"] == 2
    assert metadata["owner"] == "py"
    assert version == 0
    assert numbers(client.get_stream(s)) == [1, 2], "$maxCount applies on read"


def test_multi_append_writes_every_stream_atomically(client):
    a, b = stream("pya"), stream("pyb")
    first = NewEvent(
        type="Placed",
        data=json.dumps({"n": 0}).encode(),
        metadata=b'{"$correlationId":"c-1","owner":"py"}',
    )
    raw = NewEvent(
        type="Raw",
        data=b"\x00\x01",
        content_type="application/octet-stream",
    )
    position = client.multi_append_to_stream(
        [
            NewEvents(
                stream_name=a,
                events=[first, event(1)],
                current_version=StreamState.NO_STREAM,
            ),
            NewEvents(stream_name=b, events=[raw], current_version=StreamState.ANY),
        ]
    )
    assert numbers(client.get_stream(a)) == [0, 1]
    assert client.get_current_version(a) == 1, "revisions are 0-based"
    (got_raw,) = client.get_stream(b)
    assert position == got_raw.commit_position, "the last event's position"
    assert got_raw.data == b"\x00\x01"
    assert got_raw.content_type == "application/octet-stream"
    got = client.get_stream(a)[0]
    assert got.id == first.id
    assert got.type == "Placed"
    assert got.content_type == "application/json"
    # Properties read back on v1 as a compact JSON object, keys in order.
    assert got.metadata == b'{"$correlationId":"c-1","owner":"py"}'
    assert got.commit_position < got_raw.commit_position

    # A wrong current version on one stream appends nothing to either.
    with pytest.raises(WrongCurrentVersionError) as failed:
        client.multi_append_to_stream(
            [
                NewEvents(stream_name=b, events=[event(2)], current_version=0),
                NewEvents(stream_name=a, events=[event(3)], current_version=0),
            ]
        )
    assert failed.value.stream_name == a
    assert failed.value.expected_version == 0
    assert failed.value.actual_version == 1
    assert numbers(client.get_stream(a)) == [0, 1]
    assert len(client.get_stream(b)) == 1

    later = client.multi_append_to_stream(
        [
            NewEvents(stream_name=b, events=[event(2)], current_version=0),
            NewEvents(
                stream_name=a, events=[event(3)], current_version=StreamState.EXISTS
            ),
        ]
    )
    assert later > position
    assert numbers(client.get_stream(a)) == [0, 1, 3]


def test_multi_append_refusals(client):
    a = stream()
    with pytest.raises(MultiAppendToSameStreamError):
        client.multi_append_to_stream(
            [
                NewEvents(stream_name=a, events=[event(0)], current_version=StreamState.ANY),
                NewEvents(stream_name=a, events=[event(1)], current_version=StreamState.ANY),
            ]
        )
    with pytest.raises(NotFoundError):
        client.get_stream(a)
    with pytest.raises(WrongCurrentVersionError) as failed:
        client.multi_append_to_stream(
            NewEvents(stream_name=a, events=[event(0)], current_version=StreamState.EXISTS)
        )
    assert failed.value.actual_version == StreamState.NO_STREAM
    client.append_to_stream(a, events=event(0), current_version=StreamState.ANY)
    client.tombstone_stream(a, current_version=StreamState.ANY)
    with pytest.raises(StreamTombstonedError):
        client.multi_append_to_stream(
            NewEvents(stream_name=a, events=[event(1)], current_version=StreamState.ANY)
        )


def test_append_records_groups_streams_and_checks_them(client):
    a, b = stream("pya"), stream("pyb")

    def rec(name: str, n: int) -> NewRecord:
        return NewRecord(
            stream_name=name,
            type="Counted",
            data=json.dumps({"n": n}).encode(),
            metadata=b'{"k":"v"}',
        )

    result = client.append_records(
        [rec(a, 0), rec(b, 1), rec(a, 2)],
        checks=[StreamStateCheck(stream_name=b, expected_state=StreamState.NO_STREAM)],
    )
    positions = {p.stream_name: p.stream_position for p in result.stream_positions}
    assert positions == {a: 1, b: 0}
    assert numbers(client.get_stream(a)) == [0, 2]
    assert client.get_stream(a)[0].metadata == b'{"k":"v"}'
    both = list(client.get_stream(a)) + list(client.get_stream(b))
    last = max(e.commit_position for e in both)
    assert result.commit_position == last

    with pytest.raises(ConsistencyChecksFailedError) as failed:
        client.append_records(
            [rec(a, 3), rec(b, 4)],
            checks=[
                StreamStateCheck(stream_name=b, expected_state=0),
                StreamStateCheck(stream_name=a, expected_state=0),
            ],
        )
    (failure,) = failed.value.failures
    assert failure.check_index == 1
    assert failure.stream_state_failure.stream_name == a
    assert failure.stream_state_failure.expected_state == 0
    assert failure.stream_state_failure.actual_state == 1
    assert numbers(client.get_stream(b)) == [1], "nothing appended"


def test_catch_up_subscription_to_all_goes_live(client):
    tag = uuid.uuid4().hex[:8]
    s = f"sub{tag}-1"
    append_each(client, s, [0, 1])
    got: queue.Queue = queue.Queue()
    subscription = client.subscribe_to_all(
        filter_include=[f"sub{tag}-"],
        filter_by_stream_name=True,
        filter_by_prefix=True,
        include_caught_up=True,
    )

    def drain():
        for item in subscription:
            got.put(item)

    threading.Thread(target=drain, daemon=True).start()
    caught_up_seen = False
    seen: list[int] = []
    while len(seen) < 2:
        item = got.get(timeout=10)
        if isinstance(item, CaughtUp):
            caught_up_seen = True
        else:
            seen.append(json.loads(item.data)["n"])
    append_each(client, s, [2])
    while len(seen) < 3:
        item = got.get(timeout=10)
        if isinstance(item, CaughtUp):
            caught_up_seen = True
        else:
            seen.append(json.loads(item.data)["n"])
    subscription.stop()
    assert seen == [0, 1, 2]
    assert caught_up_seen


def test_catch_up_subscription_to_a_stream_goes_live(client):
    s = stream()
    append_each(client, s, [0, 1])
    subscription = client.subscribe_to_stream(s)
    got: queue.Queue = queue.Queue()

    def drain():
        for item in subscription:
            got.put(item)

    threading.Thread(target=drain, daemon=True).start()
    seen = [json.loads(got.get(timeout=10).data)["n"] for _ in range(2)]
    append_each(client, s, [2])
    seen.append(json.loads(got.get(timeout=10).data)["n"])
    subscription.stop()
    assert seen == [0, 1, 2]


def test_persistent_subscription_shares_acks_and_redelivers_nacked(client):
    s = stream()
    append_each(client, s, [0, 1, 2])
    group = f"g-{uuid.uuid4().hex[:8]}"
    client.create_subscription_to_stream(group_name=group, stream_name=s)
    names = [g.group_name for g in client.list_subscriptions_to_stream(s)]
    assert names == [group]
    subscription = client.read_subscription_to_stream(group_name=group, stream_name=s)
    got: queue.Queue = queue.Queue()

    def drain():
        for item in subscription:
            got.put(item)

    threading.Thread(target=drain, daemon=True).start()
    first = [got.get(timeout=10) for _ in range(3)]
    assert numbers(first) == [0, 1, 2]
    subscription.ack(first[0])
    subscription.ack(first[1])
    # A nack to retry comes back, counted.
    subscription.nack(first[2], action="retry")
    again = got.get(timeout=10)
    assert numbers([again]) == [2]
    assert again.retry_count == 1
    subscription.ack(again)
    subscription.stop()
    client.delete_subscription(group_name=group, stream_name=s)
    with pytest.raises(NotFoundError):
        client.get_subscription_info(group_name=group, stream_name=s)


def test_persistent_subscription_to_all_with_filters(client):
    # The client's default exclusion filter, then an event-type filter of
    # its own: only the events the filter passes reach the reader.
    tag = uuid.uuid4().hex[:8]
    wanted, other = f"Wanted{tag}", f"Other{tag}"
    position = client.get_commit_position()
    group = f"all-{tag}"
    client.create_subscription_to_all(
        group_name=group,
        commit_position=position,
        filter_include=[wanted],
        max_subscriber_count=1,
        live_buffer_size=321,
    )
    s = stream()
    append_each(client, s, [0], wanted)
    append_each(client, s, [1], other)
    append_each(client, stream(), [2], wanted)
    info = client.get_subscription_info(group_name=group)
    assert info.live_buffer_size == 321
    assert info.max_subscriber_count == 1
    subscription = client.read_subscription_to_all(group_name=group)
    got: queue.Queue = queue.Queue()

    def drain():
        for item in subscription:
            got.put(item)

    threading.Thread(target=drain, daemon=True).start()
    seen = [got.get(timeout=10) for _ in range(2)]
    assert numbers(seen) == [0, 2]
    assert {e.type for e in seen} == {wanted}
    for e in seen:
        subscription.ack(e)
    # One reader is the limit this subscription was made with.
    with pytest.raises(MaximumSubscriptionsReachedError):
        second = client.read_subscription_to_all(group_name=group)
        next(iter(second))
    subscription.stop()
    client.delete_subscription(group_name=group)


def test_a_server_with_keys_refuses_calls_without_credentials():
    # The client sends Basic credentials only over TLS, so over cleartext a
    # server with API keys sees none and answers Unauthenticated.
    from kurrentdbclient.exceptions import UnauthenticatedError

    keyed = KurrentDBClient(os.environ["STRATA_KURRENTDB_KEYED_URI"])
    try:
        with pytest.raises(UnauthenticatedError):
            keyed.append_to_stream(
                stream(), events=event(0), current_version=StreamState.ANY
            )
        with pytest.raises(UnauthenticatedError):
            keyed.get_stream(stream())
    finally:
        keyed.close()
