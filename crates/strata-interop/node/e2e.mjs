// The Node.js KurrentDB client against a Strata gRPC endpoint, end to end.
//
// Run by crates/strata-interop/tests/kurrentdb_node.rs, which starts the
// servers and passes their connection strings in STRATA_KURRENTDB_URI (an
// open server) and STRATA_KURRENTDB_KEYED_URI (a server with API keys).
//
//   node e2e.mjs [SECTION ...]     (no section: every section)
//
// Sections: append, read, all, allBackwards, subscribe, delete, tombstone,
// metadata, multiAppend, appendRecords, auth. Each prints `ok SECTION` or `FAILED SECTION: why`; the last line
// is `N passed, N failed`, and the exit code is 1 when any failed.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import {
  ANY,
  BACKWARDS,
  END,
  FORWARDS,
  KurrentDBClient,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  eventTypeFilter,
  jsonEvent,
  streamNameFilter,
} from "@kurrent/kurrentdb-client";

const uri = process.env.STRATA_KURRENTDB_URI;
const keyedUri = process.env.STRATA_KURRENTDB_KEYED_URI;
if (!uri || !keyedUri) {
  console.error("STRATA_KURRENTDB_URI and STRATA_KURRENTDB_KEYED_URI must be set");
  process.exit(2);
}

// The longest a section waits for a subscription's next message.
const SUBSCRIPTION_WAIT_MS = 10_000;

const client = KurrentDBClient.connectionString(uri);

const tag = () => randomUUID().replaceAll("-", "").slice(0, 12);
const counted = (n, type = "Counted") => jsonEvent({ type, data: { n } });

async function collect(read) {
  const out = [];
  for await (const resolved of read) out.push(resolved.event);
  return out;
}

const numbers = (events) => events.map((e) => e.data.n);

async function appendEach(stream, ns, type = "Counted") {
  let result;
  for (const n of ns) result = await client.appendToStream(stream, counted(n, type));
  return result;
}

async function rejects(promise, name) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.constructor.name, name, `${e.constructor.name}: ${e.message}`);
    return true;
  });
}

const sections = {
  async append() {
    const s = `node-${tag()}`;
    const first = await client.appendToStream(s, counted(0), { streamState: NO_STREAM });
    assert.equal(first.success, true);
    assert.equal(first.nextExpectedRevision, 0n, "revisions are 0-based");
    assert.ok(first.position.commit > 0n);
    const second = await client.appendToStream(s, [counted(1), counted(2)], {
      streamState: 0n,
    });
    assert.equal(second.nextExpectedRevision, 2n);
    assert.ok(second.position.commit > first.position.commit);
    await client.appendToStream(s, counted(3), { streamState: STREAM_EXISTS });
    await client.appendToStream(s, counted(4), { streamState: ANY });
    await rejects(
      client.appendToStream(s, counted(99), { streamState: 1n }),
      "WrongExpectedVersionError",
    );
    await rejects(
      client.appendToStream(`node-${tag()}`, counted(0), { streamState: STREAM_EXISTS }),
      "WrongExpectedVersionError",
    );
    assert.deepEqual(numbers(await collect(client.readStream(s))), [0, 1, 2, 3, 4]);
  },

  async read() {
    const s = `node-${tag()}`;
    const id = randomUUID();
    await client.appendToStream(s, [
      jsonEvent({ id, type: "Counted", data: { n: 0 }, metadata: { $correlationId: "c-1" } }),
      counted(1),
      counted(2),
    ]);
    const forwards = await collect(client.readStream(s, { direction: FORWARDS }));
    assert.deepEqual(numbers(forwards), [0, 1, 2]);
    assert.equal(forwards[0].id, id);
    assert.equal(forwards[0].type, "Counted");
    assert.equal(forwards[0].streamId, s);
    assert.equal(forwards[0].revision, 0n);
    assert.equal(forwards[0].isJson, true);
    assert.deepEqual(forwards[0].metadata, { $correlationId: "c-1" });
    assert.ok(forwards[0].created instanceof Date);
    const backwards = await collect(
      client.readStream(s, { direction: BACKWARDS, fromRevision: END }),
    );
    assert.deepEqual(numbers(backwards), [2, 1, 0]);
    const from = await collect(client.readStream(s, { fromRevision: 1n, maxCount: 1 }));
    assert.deepEqual(numbers(from), [1]);
    await rejects(collect(client.readStream(`node-${tag()}`)), "StreamNotFoundError");
  },

  async all() {
    const t = tag();
    await appendEach(`orders${t}-1`, [0, 1], `Placed${t}`);
    await appendEach(`users${t}-1`, [2], `Joined${t}`);
    await appendEach(`orders${t}-2`, [3], `Placed${t}`);
    const byPrefix = await collect(
      client.readAll({
        direction: FORWARDS,
        fromPosition: START,
        filter: streamNameFilter({ prefixes: [`orders${t}-`] }),
      }),
    );
    assert.deepEqual(numbers(byPrefix), [0, 1, 3]);
    const byType = await collect(
      client.readAll({ filter: eventTypeFilter({ regex: `^Joined${t}$` }) }),
    );
    assert.deepEqual(numbers(byType), [2]);
    const positions = byPrefix.map((e) => e.position.commit);
    assert.deepEqual([...positions].sort((a, b) => (a < b ? -1 : 1)), positions);
    const from = await collect(
      client.readAll({
        fromPosition: { commit: positions[1], prepare: positions[1] },
        filter: streamNameFilter({ prefixes: [`orders${t}-`] }),
      }),
    );
    assert.deepEqual(numbers(from), [1, 3], "a read from a position includes it");
  },

  async allBackwards() {
    const t = tag();
    await appendEach(`back${t}-1`, [0, 1, 2]);
    const got = await collect(
      client.readAll({
        direction: BACKWARDS,
        fromPosition: END,
        filter: streamNameFilter({ prefixes: [`back${t}-`] }),
      }),
    );
    assert.deepEqual(numbers(got), [2, 1, 0]);
  },

  async subscribe() {
    const t = tag();
    const s = `sub${t}-1`;
    await appendEach(s, [0, 1]);
    const subscription = client.subscribeToAll({
      fromPosition: START,
      filter: streamNameFilter({ prefixes: [`sub${t}-`] }),
    });
    let caughtUp = false;
    subscription.on("caughtUp", () => {
      caughtUp = true;
    });
    const seen = [];
    const iterator = subscription[Symbol.asyncIterator]();
    const next = async () => {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no event within ${SUBSCRIPTION_WAIT_MS} ms`)),
          SUBSCRIPTION_WAIT_MS,
        );
      });
      try {
        const { value } = await Promise.race([iterator.next(), timeout]);
        return value.event.data.n;
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      seen.push(await next(), await next());
      await appendEach(s, [2]);
      seen.push(await next());
    } finally {
      await subscription.unsubscribe();
    }
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(caughtUp, true, "the subscription reported it caught up");
  },

  async delete() {
    const s = `node-${tag()}`;
    await appendEach(s, [0, 1]);
    await rejects(
      client.deleteStream(s, { expectedRevision: 0n }),
      "WrongExpectedVersionError",
    );
    await client.deleteStream(s, { expectedRevision: 1n });
    await rejects(collect(client.readStream(s)), "StreamNotFoundError");
    await client.appendToStream(s, counted(2));
    assert.deepEqual(numbers(await collect(client.readStream(s))), [2]);
  },

  async tombstone() {
    const s = `node-${tag()}`;
    await appendEach(s, [0]);
    await client.tombstoneStream(s);
    await rejects(client.appendToStream(s, counted(1)), "StreamDeletedError");
    await rejects(collect(client.readStream(s)), "StreamDeletedError");
  },

  async metadata() {
    const s = `node-${tag()}`;
    await appendEach(s, [0, 1, 2]);
    await client.setStreamMetadata(s, { maxCount: 2, owner: "node" });
    const got = await client.getStreamMetadata(s);
    assert.equal(got.metadata.maxCount, 2);
    assert.equal(got.metadata.owner, "node");
    assert.deepEqual(numbers(await collect(client.readStream(s))), [1, 2]);
  },

  async multiAppend() {
    // The v2 AppendSession: every stream or none.
    const a = `node-${tag()}`;
    const b = `node-${tag()}`;
    const result = await client.multiStreamAppend([
      {
        streamName: a,
        events: [
          jsonEvent({ type: "Counted", data: { n: 0 }, metadata: { $correlationId: "c-1", k: "v" } }),
          counted(1),
        ],
        expectedState: NO_STREAM,
      },
      { streamName: b, events: [counted(2)], expectedState: ANY },
    ]);
    assert.deepEqual(
      result.responses.map((r) => [r.streamName, r.revision]),
      [
        [a, 1n],
        [b, 0n],
      ],
    );
    const [last] = await collect(client.readStream(b));
    assert.equal(result.position, last.position.commit, "the last event's position");
    const [first] = await collect(client.readStream(a));
    assert.deepEqual(first.metadata, { $correlationId: "c-1", k: "v" });
    await rejects(
      client.multiStreamAppend([
        { streamName: b, events: [counted(3)], expectedState: 0n },
        { streamName: a, events: [counted(4)], expectedState: 0n },
      ]),
      "WrongExpectedVersionError",
    );
    assert.deepEqual(numbers(await collect(client.readStream(a))), [0, 1], "nothing appended");
    assert.deepEqual(numbers(await collect(client.readStream(b))), [2]);
  },

  async appendRecords() {
    // The v2 AppendRecords: records grouped per stream, checks as guards.
    const a = `node-${tag()}`;
    const b = `node-${tag()}`;
    const result = await client.appendRecords(
      [
        { streamName: a, record: counted(0) },
        { streamName: b, record: counted(1) },
        { streamName: a, record: counted(2) },
      ],
      [{ type: "stream_state", streamName: b, expectedState: NO_STREAM }],
    );
    assert.deepEqual(
      result.responses.map((r) => [r.streamName, r.revision]),
      [
        [a, 1n],
        [b, 0n],
      ],
    );
    assert.deepEqual(numbers(await collect(client.readStream(a))), [0, 2]);
    await assert.rejects(
      client.appendRecords(
        [{ streamName: a, record: counted(3) }],
        [{ type: "stream_state", streamName: a, expectedState: 0n }],
      ),
      (e) => {
        assert.equal(e.constructor.name, "AppendConsistencyViolationError", e.message);
        assert.equal(e.violations.length, 1);
        assert.equal(e.violations[0].checkIndex, 0);
        assert.equal(e.violations[0].actualState, 1n);
        return true;
      },
    );
    assert.deepEqual(numbers(await collect(client.readStream(a))), [0, 2], "nothing appended");
  },

  async auth() {
    // The client sends no credentials over cleartext: a server with keys
    // refuses its calls.
    const keyed = KurrentDBClient.connectionString(keyedUri);
    try {
      // The client raises the Unauthenticated status as AccessDeniedError.
      await rejects(keyed.appendToStream(`node-${tag()}`, counted(0)), "AccessDeniedError");
      await rejects(collect(keyed.readStream(`node-${tag()}`)), "AccessDeniedError");
    } finally {
      await keyed.dispose();
    }
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in sections)) {
    console.error(`no section ${name}; sections: ${Object.keys(sections).join(", ")}`);
    process.exit(2);
  }
}
let passed = 0;
let failed = 0;
for (const name of wanted.length ? wanted : Object.keys(sections)) {
  try {
    await sections[name]();
    console.log(`ok ${name}`);
    passed += 1;
  } catch (e) {
    console.log(`FAILED ${name}: ${e?.stack ?? e}`);
    failed += 1;
  }
}
await client.dispose();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
