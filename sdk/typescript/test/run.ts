/**
 * The test runner: starts one quiet server for the whole suite (tests that need a server of
 * their own, with tiny rate limits or to restart, start it themselves), then runs every
 * `*.test.js` with Node's test runner, two files at a time, and stops the server.
 */

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NO_LIMITS, TestServer } from "./harness.js";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((name) => name.endsWith(".test.js"))
  .filter((name) => only.length === 0 || only.some((pattern) => name.includes(pattern)))
  .sort()
  .map((name) => join(here, name));

const server = await TestServer.start({ env: NO_LIMITS });
let code = 1;
try {
  code = await new Promise<number>((resolveCode) => {
    const child = spawn(
      process.execPath,
      ["--test", `--test-concurrency=${process.env.BALLAST_TEST_CONCURRENCY ?? "2"}`, ...files],
      {
        stdio: "inherit",
        env: { ...process.env, BALLAST_TEST_PORT: String(server.port), BALLAST_TEST_DATA_DIR: server.dataDir },
      },
    );
    child.once("exit", (exit, signal) => resolveCode(exit ?? (signal === null ? 1 : 128)));
  });
} finally {
  await server.dispose();
}
process.exit(code);
