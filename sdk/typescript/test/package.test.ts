/** The package as users get it: the README's first example (the spec's, translated line for line)
 * run as written, and the packed tarball installed into an empty folder, used from a plain .mjs
 * and a .cjs script against a live server, and type-checked from .mts and .cts. */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { promisify } from "node:util";
import { BallastClient } from "@ballast/sdk";
import { PACKAGE_ROOT, sharedServer, type TestServer } from "./harness.js";

const run = promisify(execFile);
let server: TestServer;

before(async () => {
  server = await sharedServer();
});

function readmeExample(): string {
  const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");
  const match = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(match?.[1] !== undefined, "the README starts with a ts example");
  return match[1];
}

test("the README's first example is the spec's, line for line", () => {
  const example = readmeExample();
  for (const line of [
    'import { BallastClient } from "@ballast/sdk";',
    'apiKey: "bmkt_live_abc123",',
    'apiSecret: "bmkt_secret_xyz789",',
    "// Get markets",
    "const markets = await client.getMarkets();",
    "// Place order",
    'marketId: "suez-apr2025",',
    'side: "buy",',
    'orderType: "limit",',
    "price: 0.87,",
    "size: 1000,",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the example's own text
    "console.log(`Order placed: ${order.id}`);",
  ]) {
    assert.ok(example.includes(line), line);
  }
});

test("the README's first example runs as written against a live server", async () => {
  const market = "suez-apr2025";
  await server.market("binary", { id: market }).catch((error: unknown) => {
    assert.match(String(error), /MARKET_EXISTS/); // listed by an earlier run on this server
  });
  const account = await server.account(50_000);
  // The only changes: the spec's placeholder credentials become a real key on this server,
  // whose address comes from BALLAST_BASE_URL, as a user's would.
  const script = readmeExample()
    .replace("bmkt_live_abc123", account.api_key)
    .replace("bmkt_secret_xyz789", account.api_secret);
  const dir = join(PACKAGE_ROOT, "build", "examples");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `spec-example-${process.pid}.mjs`);
  writeFileSync(file, script);
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, BALLAST_BASE_URL: server.api };
    delete env.BALLAST_API_KEY;
    delete env.BALLAST_API_SECRET;
    const { stdout } = await run(process.execPath, [file], { env, timeout: 60_000 });
    const printed = /^Order placed: (ord_\w+)\n$/.exec(stdout);
    assert.ok(printed?.[1] !== undefined, stdout);
    const check = new BallastClient({ apiKey: account.api_key, apiSecret: account.api_secret, baseUrl: server.api });
    const order = await check.getOrder(printed[1]);
    assert.deepEqual(
      [order.marketId, order.side, order.type, order.size, order.price, order.status],
      [market, "buy", "limit", 1000, "0.87", "open"],
    );
  } finally {
    rmSync(file, { force: true });
  }
});

test("the packed tarball installs into an empty folder and works from .mjs, .cjs and TypeScript", async () => {
  const work = mkdtempSync(join(tmpdir(), "ballast-pack-"));
  try {
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const { stdout: packed } = await run(npm, ["pack", "--pack-destination", work, "--json"], {
      cwd: PACKAGE_ROOT,
      timeout: 120_000,
    });
    const [info] = JSON.parse(packed) as { filename: string; files: { path: string }[] }[];
    assert.ok(info !== undefined);
    assert.match(info.filename, /^ballast-sdk-\d+\.\d+\.\d+\.tgz$/);
    const files = info.files.map((f) => f.path);
    for (const expected of [
      "dist/esm/index.js",
      "dist/esm/index.d.ts",
      "dist/cjs/index.js",
      "dist/cjs/index.d.ts",
      "dist/cjs/package.json",
      "README.md",
      "LICENSE",
      "package.json",
    ]) {
      assert.ok(files.includes(expected), expected);
    }
    assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("build/")));

    const app = join(work, "app");
    mkdirSync(app);
    await run(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", join(work, info.filename)], {
      cwd: app,
      timeout: 300_000,
    });
    assert.deepEqual(readdirSync(join(app, "node_modules", "@ballast")), ["sdk"]);
    for (const name of ["smoke.mjs", "smoke.cjs", "consumer.mts", "consumer.cts"]) {
      copyFileSync(join(PACKAGE_ROOT, "pack-test", name), join(app, name));
    }

    const market = await server.market();
    const account = await server.account(1000);
    const env = {
      ...process.env,
      BALLAST_BASE_URL: server.api,
      BALLAST_API_KEY: account.api_key,
      BALLAST_API_SECRET: account.api_secret,
      BALLAST_MARKET: market,
    };
    const results: Record<string, unknown>[] = [];
    for (const script of ["smoke.mjs", "smoke.cjs"]) {
      const { stdout } = await run(process.execPath, [script], { cwd: app, env, timeout: 60_000 });
      results.push(JSON.parse(stdout.trim()) as Record<string, unknown>);
    }
    const [esm, cjs] = results;
    assert.deepEqual(
      [esm?.module, esm?.listed, esm?.price, esm?.sum, esm?.refused],
      ["esm", true, "0.61", "0.3", "INSUFFICIENT_BALANCE"],
    );
    assert.deepEqual(
      [cjs?.module, cjs?.listed, cjs?.price, cjs?.bestBid, cjs?.sum, cjs?.refused],
      ["cjs", true, "0.62", "0.62", "0.3", "INSUFFICIENT_BALANCE"],
    );
    assert.equal(esm?.bestBid, "0.61");
    assert.equal(esm?.version, cjs?.version);
    const orders = await new BallastClient({
      apiKey: account.api_key,
      apiSecret: account.api_secret,
      baseUrl: server.api,
    }).getOrders();
    assert.deepEqual(orders.map((o) => o.id).sort(), [esm?.order, cjs?.order].sort());

    // The declarations serve both module systems.
    const tsc = join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc");
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["es2022", "dom"],
          types: [],
        },
        files: ["consumer.mts", "consumer.cts"],
      }),
    );
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app, timeout: 120_000 }).catch(
      (error: { stdout?: string }) => {
        assert.fail(`tsc: ${error.stdout ?? String(error)}`);
      },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
