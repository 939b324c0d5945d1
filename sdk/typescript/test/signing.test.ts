/** The shared signing vectors (tests/sdk/signing_vectors.json, which the Python SDK's tests read
 * too), and a signature the real server accepts. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BallastClient, Signer, sign } from "@ballast/sdk";
import { REPO_ROOT, sharedServer } from "./harness.js";

interface Vector {
  name: string;
  secret: string;
  timestamp: string;
  method: string;
  path: string;
  body: string;
  signature: string;
}

const VECTORS: Vector[] = JSON.parse(
  readFileSync(join(REPO_ROOT, "tests", "sdk", "signing_vectors.json"), "utf8"),
).vectors;

test("the vectors file has the docs' worked example and more", () => {
  assert.ok(VECTORS.length >= 8);
  const docs = readFileSync(join(REPO_ROOT, "docs", "api.md"), "utf8");
  const examples = VECTORS.filter((v) => v.name.startsWith("docs:"));
  assert.equal(examples.length, 3);
  for (const vector of examples) {
    assert.ok(docs.includes(`\`${vector.signature}\``), vector.name);
  }
});

for (const vector of VECTORS) {
  test(`sign(): ${vector.name}`, async () => {
    assert.equal(
      await sign(vector.secret, vector.timestamp, vector.method, vector.path, vector.body),
      vector.signature,
    );
    // The same on each backend (node:crypto, Web Crypto), body as text and as bytes, reused.
    const bytes = new TextEncoder().encode(vector.body);
    for (const backend of ["node", "webcrypto"] as const) {
      const signer = new Signer(vector.secret, backend);
      assert.equal(await signer.sign(vector.timestamp, vector.method, vector.path, bytes), vector.signature, backend);
      assert.equal(
        await signer.sign(vector.timestamp, vector.method.toLowerCase(), vector.path, vector.body),
        vector.signature,
        backend,
      );
    }
  });
}

test("a signature the server accepts, and one it refuses", async () => {
  const server = await sharedServer();
  const account = await server.account();
  const client = new BallastClient({ apiKey: account.api_key, apiSecret: account.api_secret, baseUrl: server.api });
  const balance = await client.getBalance();
  assert.equal(balance.currency, "USDC");
  // By hand, as the spec's snippet does it: the path with /v1 and the query.
  const timestamp = String(Date.now());
  const path = "/v1/orders?status=open";
  const response = await fetch(`${server.url}${path}`, {
    headers: {
      Authorization: `Bearer ${account.api_key}`,
      "X-BM-Timestamp": timestamp,
      "X-BM-Signature": await sign(account.api_secret, timestamp, "GET", path),
    },
  });
  assert.equal(response.status, 200, await response.text());
  const wrong = await fetch(`${server.url}${path}`, {
    headers: {
      Authorization: `Bearer ${account.api_key}`,
      "X-BM-Timestamp": timestamp,
      "X-BM-Signature": await sign("bmkt_secret_wrong", timestamp, "GET", path),
    },
  });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, "INVALID_SIGNATURE");
});
