import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  type DecodeEvent,
  encodeFrame,
  FrameDecoder,
  FrameWriter,
  MessageTooLargeError,
} from "../../src/plugin/framing.js";
import { parseRequest, sniffRequestId } from "../../src/plugin/protocol.js";

function frames(events: DecodeEvent[]): unknown[] {
  return events.map((e) => (e.kind === "frame" ? JSON.parse(e.payload.toString("utf8")) : e));
}

function header(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length, 0);
  return b;
}

describe("encodeFrame", () => {
  it("writes a 4-byte big-endian length and UTF-8 JSON", () => {
    const frame = encodeFrame({ messageType: 0, requestId: 0, text: "é" });
    const json = '{"messageType":0,"requestId":0,"text":"é"}';
    expect(frame.readUInt32BE(0)).toBe(Buffer.byteLength(json));
    expect(frame.subarray(4).toString("utf8")).toBe(json);
  });

  it("refuses a message over the limit", () => {
    expect(() => encodeFrame({ output: "x".repeat(100) }, 50)).toThrow(MessageTooLargeError);
    expect(DEFAULT_MAX_MESSAGE_SIZE).toBe(5_242_880);
  });
});

describe("FrameDecoder", () => {
  const a = { messageType: 1, requestId: 1, version: { major: 3, minor: 5, patch: 0 } };
  const b = { messageType: 9, requestId: 2, username: "ü-user" };

  it("decodes several messages delivered in one chunk", () => {
    const d = new FrameDecoder();
    expect(frames(d.push(Buffer.concat([encodeFrame(a), encodeFrame(b), encodeFrame(a)])))).toEqual([
      a,
      b,
      a,
    ]);
    expect(d.pending).toBe(0);
    expect(d.end()).toEqual([]);
  });

  it("decodes a message split byte by byte, header included", () => {
    const d = new FrameDecoder();
    const bytes = Buffer.concat([encodeFrame(a), encodeFrame(b)]);
    const out: DecodeEvent[] = [];
    for (const byte of bytes) out.push(...d.push(Buffer.from([byte])));
    expect(frames(out)).toEqual([a, b]);
  });

  it("decodes messages split at arbitrary points across chunks (multi-byte characters cut too)", () => {
    const bytes = Buffer.concat([encodeFrame(b), encodeFrame(a), encodeFrame(b)]);
    for (let cut1 = 1; cut1 < bytes.length - 1; cut1 += 3) {
      const cut2 = Math.min(bytes.length, cut1 + 7);
      const d = new FrameDecoder();
      const out = [
        ...d.push(bytes.subarray(0, cut1)),
        ...d.push(bytes.subarray(cut1, cut2)),
        ...d.push(bytes.subarray(cut2)),
      ];
      expect(frames(out)).toEqual([b, a, b]);
    }
  });

  it("skips an oversize message, reports it once with its start, and decodes the next one", () => {
    const d = new FrameDecoder(64);
    const big = Buffer.from(JSON.stringify({ messageType: 3, requestId: 42, pad: "x".repeat(200) }));
    const events = [
      ...d.push(Buffer.concat([header(big.length), big.subarray(0, 10)])),
      ...d.push(big.subarray(10, 100)),
      ...d.push(Buffer.concat([big.subarray(100), encodeFrame(b, 64)])),
    ];
    expect(events.map((e) => e.kind)).toEqual(["oversize", "frame"]);
    const oversize = events[0] as Extract<DecodeEvent, { kind: "oversize" }>;
    expect(oversize).toMatchObject({ size: big.length, max: 64 });
    expect(sniffRequestId(oversize.prefix)).toBe(42);
    expect(frames([events[1]!])).toEqual([b]);
  });

  it("reports input that ends inside a header or a payload as truncated", () => {
    const d1 = new FrameDecoder();
    d1.push(Buffer.from([0, 0]));
    expect(d1.end()).toEqual([expect.objectContaining({ kind: "truncated", received: 2 })]);

    const d2 = new FrameDecoder();
    const frame = encodeFrame({ messageType: 9, requestId: 7 });
    expect(d2.push(frame.subarray(0, frame.length - 1))).toEqual([]);
    const [event] = d2.end();
    expect(event).toMatchObject({
      kind: "truncated",
      expected: frame.length - 4,
      received: frame.length - 5,
    });
    expect(sniffRequestId((event as { prefix: Buffer }).prefix)).toBe(7);
  });

  it("gives a zero-length message as an empty frame (which then fails to parse)", () => {
    const d = new FrameDecoder();
    const [event] = d.push(header(0));
    expect(event).toMatchObject({ kind: "frame" });
    expect(parseRequest((event as { payload: Buffer }).payload)).toMatchObject({ ok: false });
  });
});

describe("parseRequest", () => {
  it("needs an integer messageType and a non-negative integer requestId", () => {
    expect(parseRequest(Buffer.from('{"messageType":9,"requestId":3}'))).toEqual({
      ok: true,
      request: { messageType: 9, requestId: 3 },
    });
    expect(parseRequest(Buffer.from('{"messageType":9}'))).not.toHaveProperty("requestId");
    expect(parseRequest(Buffer.from('{"requestId":4}'))).toMatchObject({ ok: false, requestId: 4 });
    expect(parseRequest(Buffer.from('{"messageType":"9","requestId":5}'))).toMatchObject({
      ok: false,
      requestId: 5,
    });
    expect(parseRequest(Buffer.from("[1,2]"))).toMatchObject({ ok: false });
  });

  it("finds the requestId of invalid JSON when it plainly appears", () => {
    expect(parseRequest(Buffer.from('{"messageType":3,"requestId":12,'))).toMatchObject({
      ok: false,
      requestId: 12,
    });
    expect(parseRequest(Buffer.from("not json"))).toMatchObject({ ok: false });
    expect(parseRequest(Buffer.from([0x7b, 0xff, 0x7d]))).toMatchObject({
      ok: false,
      message: expect.stringContaining("UTF-8"),
    });
  });
});

describe("FrameWriter", () => {
  it("writes frames and waits for drain when the stream is full", async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const writer = new FrameWriter(out);
    const first = writer.write({ messageType: 0, requestId: 0, responseId: 0 });
    expect(first).toBeInstanceOf(Promise);
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    await first;
    const d = new FrameDecoder();
    expect(frames(d.push(Buffer.concat(chunks)))).toEqual([{ messageType: 0, requestId: 0, responseId: 0 }]);
  });

  it("drops writes once the stream is closed and refuses oversize messages", () => {
    const out = new PassThrough();
    const writer = new FrameWriter(out, 1024);
    expect(() => writer.write({ output: "x".repeat(2000) })).toThrow(MessageTooLargeError);
    out.destroy();
    expect(writer.open).toBe(false);
    expect(writer.write({ messageType: 0 })).toBeUndefined();
  });
});
