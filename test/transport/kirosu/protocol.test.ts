import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { AckParams, EnqueueParams } from "../../../src/domain/Kirosu.js"
import { statsKeys } from "../../support/KirosuClient.js"
import {
  describeParamError,
  encodeReply,
  kirisStatuses,
  kirosuStatus,
  parseLine,
  promptOf,
  resultText,
  toKirosuStats
} from "../../../src/transport/kirosu/KirosuProtocol.js"
import { makeLineSplitter, splitLines } from "../../../src/transport/Ndjson.js"

const paramError = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
  Effect.flip(Schema.decodeUnknown(schema, { exact: true })(input)).pipe(Effect.map(describeParamError))

describe("Kirosu protocol (pure)", () => {
  it("splits lines across chunk boundaries, including inside a multi-byte character", () => {
    const split = makeLineSplitter(1024)
    const bytes = Buffer.from('{"a":"héllo ✓"}\n{"b":1}\n', "utf8")
    const cut = bytes.indexOf(Buffer.from("✓")) + 1
    const frames = [...split.push(bytes.subarray(0, cut)), ...split.push(bytes.subarray(cut))]
    assert.deepStrictEqual(frames, [
      { _tag: "Line", text: '{"a":"héllo ✓"}' },
      { _tag: "Line", text: '{"b":1}' }
    ])
    assert.deepStrictEqual(split.push(Buffer.from("tail")), [])
    assert.deepStrictEqual(split.end(), [{ _tag: "Line", text: "tail" }])
  })

  it("drops an oversized line once, then carries on", () => {
    const split = makeLineSplitter(8)
    const frames = [...split.push(Buffer.from("0123456789")), ...split.push(Buffer.from("abc\nok\n"))]
    assert.deepStrictEqual(frames, [
      { _tag: "Oversize", bytes: 13 },
      { _tag: "Line", text: "ok" }
    ])
    assert.deepStrictEqual(split.push(Buffer.from("0123456789ab\n")), [{ _tag: "Oversize", bytes: 12 }])
  })

  it.effect("frames a byte stream as the Kirosu port and the RPC socket read it, the last line without its newline too", () =>
    Effect.gen(function* () {
      const bytes = Buffer.from('{"id":1}\n' + "é".repeat(5) + "\n" + '{"id":2}', "utf8")
      const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 12), bytes.subarray(12)]
      const frames = yield* Stream.runCollect(splitLines(9)(Stream.fromIterable(chunks)))
      // the limit counts bytes: five `é` are ten bytes
      assert.deepStrictEqual(Chunk.toReadonlyArray(frames), [
        { _tag: "Line", text: '{"id":1}' },
        { _tag: "Oversize", bytes: 10 },
        { _tag: "Line", text: '{"id":2}' }
      ])
    })
  )

  it("reads requests, blank lines and malformed lines", () => {
    assert.deepStrictEqual(parseLine("  \r"), { _tag: "Blank" })
    assert.deepStrictEqual(parseLine(' {"id":1,"method":"stats","extra":true}\r'), {
      _tag: "Request",
      request: { id: 1, method: "stats", params: {} }
    })
    assert.deepStrictEqual(parseLine('{"method":"stats","params":null}'), {
      _tag: "Request",
      request: { id: null, method: "stats", params: {} }
    })
    assert.strictEqual(parseLine("nope")._tag, "Invalid")
    assert.deepStrictEqual(parseLine("[1]"), { _tag: "Invalid", id: null, message: "Invalid request: expected a JSON object" })
    assert.deepStrictEqual(parseLine('{"id":"x","method":4}'), { _tag: "Invalid", id: "x", message: "Invalid request: method must be a string" })
    assert.deepStrictEqual(parseLine('{"id":[1],"method":"m","params":[]}'), {
      _tag: "Invalid",
      id: [1],
      message: "Invalid request: params must be an object"
    })
  })

  it("writes id, result, error in that order", () => {
    assert.strictEqual(encodeReply({ a: 1 }, { result: { ok: true } }), '{"id":{"a":1},"result":{"ok":true},"error":null}\n')
    assert.strictEqual(encodeReply(undefined, { error: "bad" }), '{"id":null,"result":null,"error":{"message":"bad"}}\n')
  })

  it.effect("names missing and invalid params", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* paramError(EnqueueParams, {}), "Missing required param: prompt")
      assert.strictEqual(yield* paramError(AckParams, { status: "done" }), "Missing required param: task_id")
      assert.strictEqual(yield* paramError(AckParams, { task_id: "x", status: "done" }), "Invalid param task_id: expected an integer")
      assert.strictEqual(yield* paramError(AckParams, { task_id: 0, status: "done" }), "Invalid param task_id: expected a positive integer")
      assert.deepStrictEqual(yield* Schema.decodeUnknown(AckParams)({ task_id: "12", status: "done" }), { task_id: 12, status: "done" })
    })
  )

  it("maps Kiris statuses and payloads to Kirosu's view", () => {
    assert.deepStrictEqual((["waiting", "queued", "leased", "done", "failed", "dead", "cancelled"] as const).map(kirosuStatus), [
      "queued",
      "queued",
      "leased",
      "done",
      "failed",
      "failed",
      "failed"
    ])
    assert.deepStrictEqual(kirisStatuses(" FAILED "), ["failed", "dead", "cancelled"])
    assert.deepStrictEqual(kirisStatuses("bogus"), [])
    assert.strictEqual(promptOf({ prompt: "p", system: "s" }), "p")
    assert.strictEqual(promptOf({ command: "print(1)" }), "print(1)")
    assert.strictEqual(promptOf({ other: 1 }), '{"other":1}')
    assert.strictEqual(resultText({ text: "t", usage: {} }), "t")
    assert.strictEqual(resultText({ stdout: "42\n", exitCode: 0 }), "42\n")
    assert.strictEqual(resultText(null), null)
    assert.strictEqual(resultText([1]), "[1]")
  })

  it("computes stats with two decimals", () => {
    const stats = toKirosuStats({
      counts: { queued: 1, leased: 0, done: 1, failed: 2 },
      doneDurationMsSum: 1234,
      doneWithDuration: 1,
      completedLastHour: 1
    })
    assert.deepStrictEqual(Object.keys(stats), statsKeys)
    assert.strictEqual(stats.total_tasks, 4)
    assert.strictEqual(stats.avg_completion_time_sec, 1.23)
    assert.strictEqual(stats.error_rate_percent, 66.67)
  })
})
