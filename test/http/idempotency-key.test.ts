// Hostile submissions (issue 16): an `Idempotency-Key` is 1–255 visible ASCII characters
// (0x21–0x7E), sent once; anything else is a 400 naming the header, checked before the body, and
// nothing reaches the service.
import { afterEach, describe, expect, it } from "vitest";
import { listen, makeApp, postJob, type TestApp, token } from "./helpers.js";
import { parseResponse, rawConnect, readToEnd } from "./raw-http.js";

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});
async function started() {
  const t = await makeApp();
  apps.push(t);
  return t;
}

/** The Idempotency-Key of each submission the service was handed. */
const submittedKeys = (t: TestApp) =>
  t.service.callsTo("submit").map((c) => (c.args[1] as { idempotencyKey?: string }).idempotencyKey);

/** POST /jobs over a real connection, the header line written byte for byte (latin1). */
async function rawPost(url: string, headerLines: string[]): Promise<{ status: number; body: string }> {
  const socket = await rawConnect(url);
  const response = readToEnd(socket);
  const body = JSON.stringify({ command: "true" });
  socket.write(
    Buffer.from(
      `POST /jobs HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer ${await token("alice")}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `${headerLines.map((l) => `${l}\r\n`).join("")}\r\n${body}`,
      "latin1",
    ),
  );
  const res = parseResponse(await response);
  return { status: res.status, body: res.body };
}

describe("Idempotency-Key", () => {
  it("1 to 255 visible ASCII characters are accepted and handed to the service as sent", async () => {
    const t = await started();
    const visible = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
    for (const key of ["k", visible, "x".repeat(255), "550e8400-e29b-41d4-a716-446655440000"]) {
      const res = await postJob(t, { command: "true" }, { "idempotency-key": key });
      expect(res.status, key).toBe(201);
    }
    const keys = submittedKeys(t);
    expect(keys).toEqual(["k", visible, "x".repeat(255), "550e8400-e29b-41d4-a716-446655440000"]);
  });

  it("a longer, empty or non-visible key is a 400 naming the header, checked before the body", async () => {
    const t = await started();
    const bad = [
      "x".repeat(256),
      "x".repeat(100_000),
      "",
      "has space",
      "tab\there",
      "nul\u0000",
      "del\u007f",
      "é",
      "ключ",
      "😀",
    ];
    for (const key of bad) {
      // A body that is bad too: the key is what the answer names.
      const res = await postJob(t, { command: "true", exe: "/bin/true" }, { "idempotency-key": key });
      expect(res.status, JSON.stringify(key)).toBe(400);
      expect(res.body, JSON.stringify(key)).toMatchObject({ code: 2, name: "InvalidRequest" });
      expect(String(res.body.message), JSON.stringify(key)).toMatch(
        /^Idempotency-Key must be 1 to 255 visible ASCII/,
      );
    }
    // A repeated header is the real-connection test's below: inject cannot send one.
    expect(t.service.callsTo("submit")).toEqual([]);
  });

  it("over a real connection: bytes beyond ASCII, a repeated header and an over-long one are 400s", async () => {
    const t = await started();
    const url = await listen(t.app);
    const cases = [
      ["Idempotency-Key: caf\xe9"], // one Latin-1 byte
      [`Idempotency-Key: ${Buffer.from("ключ", "utf8").toString("latin1")}`], // UTF-8 bytes
      ["Idempotency-Key: a", "Idempotency-Key: b"], // Node joins them as "a, b"
      [`Idempotency-Key: ${"k".repeat(256)}`],
      ["Idempotency-Key: two words"],
    ];
    for (const lines of cases) {
      const res = await rawPost(url, lines);
      expect(res.status, lines.join(" | ")).toBe(400);
      expect(JSON.parse(res.body).message, lines.join(" | ")).toContain("Idempotency-Key");
    }
    // Leading and trailing blanks are not part of a header's value (RFC 9110): the key is "k1".
    expect((await rawPost(url, ["Idempotency-Key:   k1  "])).status).toBe(201);
    const keys = submittedKeys(t);
    expect(keys).toEqual(["k1"]);
  });
});
