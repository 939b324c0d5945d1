/**
 * A real Ballast server for the SDK's tests: `ballast serve` from the repository's `.venv` on a
 * free loopback port and a data directory of its own, and helpers that make accounts, keys and
 * markets on it through the admin API (with the admin token the server writes to its data dir).
 *
 * Every wait here waits on a condition (the server's `/readyz`, a process exit, a message),
 * never a fixed sleep, so the suite holds on a loaded machine.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

/** The SDK package's folder (sdk/typescript) and the repository's root. */
export const PACKAGE_ROOT = findPackageRoot();
export const REPO_ROOT = resolve(PACKAGE_ROOT, "..", "..");

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "@ballast/sdk") {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error("cannot find the @ballast/sdk package folder");
    }
    dir = parent;
  }
}

/** The `ballast` command: `BALLAST_BIN`, else the repository's `.venv/bin/ballast`. */
export function ballastBin(): string {
  const bin = process.env.BALLAST_BIN ?? join(REPO_ROOT, ".venv", "bin", "ballast");
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`make test\` (or \`make run\`) once to build .venv`);
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** Poll `check` until it returns a value other than `undefined`, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last === undefined ? "" : ` (last error: ${String(last)})`}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ServerOptions {
  /** `BALLAST_*` settings, e.g. `{ BALLAST_PRIVATE_RATE_LIMIT: "3" }`. */
  env?: Record<string, string>;
  port?: number;
  dataDir?: string;
}

export interface Account {
  account_id: string;
  api_key: string;
  api_secret: string;
}

/** A `ballast serve` process and its admin API. */
export class TestServer {
  readonly port: number;
  readonly dataDir: string;
  readonly env: Record<string, string>;
  readonly url: string;
  /** The REST base URL, `http://127.0.0.1:PORT/v1`. */
  readonly api: string;
  #process: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);
  #ownsDir: boolean;

  private constructor(port: number, dataDir: string, env: Record<string, string>, ownsDir: boolean) {
    this.port = port;
    this.dataDir = dataDir;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
    this.api = `${this.url}/v1`;
    this.#ownsDir = ownsDir;
  }

  /** Start a quiet sandbox (no demo markets, no bot) on a free port. */
  static async start(options: ServerOptions = {}): Promise<TestServer> {
    const port = options.port ?? (await freePort());
    const ownsDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "ballast-ts-"));
    const server = new TestServer(port, dataDir, options.env ?? {}, ownsDir);
    await server.#launch();
    return server;
  }

  /** A running server's handle (the runner's), which this process does not own. */
  static attach(port: number, dataDir: string): TestServer {
    return new TestServer(port, dataDir, {}, false);
  }

  get adminToken(): string {
    return readFileSync(join(this.dataDir, "admin.token"), "utf8").trim();
  }

  async #launch(): Promise<void> {
    const log = createWriteStream(join(this.dataDir, "server.log"), { flags: "a" });
    const child = spawn(ballastBin(), ["serve", "--port", String(this.port), "--data-dir", this.dataDir, "--no-demo"], {
      env: { ...process.env, BALLAST_LOG_JSON: "", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.#process = child;
    this.#exited = new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code)));
    let exitCode: number | null | undefined;
    void this.#exited.then((code) => {
      exitCode = code;
    });
    await waitFor(
      `the server on port ${this.port} to be ready`,
      async () => {
        if (exitCode !== undefined) {
          const output = readFileSync(join(this.dataDir, "server.log"), "utf8").slice(-2000);
          throw new Error(`the server exited with ${exitCode} before it was ready:\n${output}`);
        }
        const response = await fetch(`${this.url}/readyz`);
        await response.text();
        return response.status === 200 ? true : undefined;
      },
      90_000,
      50,
    ).catch((error: unknown) => {
      if (exitCode !== undefined) {
        throw new Error(readFileSync(join(this.dataDir, "server.log"), "utf8").slice(-3000));
      }
      throw error;
    });
  }

  /** Stop the process (SIGTERM: a graceful shutdown, as an operator's restart does). */
  async stop(): Promise<void> {
    const child = this.#process;
    if (child === null) {
      return;
    }
    this.#process = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  /** Stop and start again on the same port with the same data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  /** Stop, and remove the data directory if this server made it. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.#ownsDir) {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }

  // ---------------------------------------------------------------------------- admin API

  async admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.api}/admin${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminToken}`, "Content-Type": "application/json" },
      body: body === undefined ? (method === "POST" ? "{}" : undefined) : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status >= 300) {
      // A server error: show what the server logged about it.
      const log = response.status >= 500 ? `\n--- server.log ---\n${this.logTail()}` : "";
      throw new Error(`admin ${method} ${path}: ${response.status} ${text}${log}`);
    }
    return JSON.parse(text) as T;
  }

  /** The end of the server's log (for failures). */
  logTail(chars = 4000): string {
    try {
      return readFileSync(join(this.dataDir, "server.log"), "utf8").slice(-chars);
    } catch {
      return "(no server.log)";
    }
  }

  /** A funded account with a read+trade key. */
  account(deposit: number | string = 10_000): Promise<Account> {
    return this.admin<Account>("POST", "/accounts", { name: unique("trader"), deposit });
  }

  /** Another key for an account (`scopes` as the admin API takes them). */
  key(accountId: string, scopes: string[] = ["read", "trade"]): Promise<Account> {
    return this.admin<Account>("POST", "/keys", { account_id: accountId, scopes });
  }

  /** Create and open a market with a unique id (`fields` as the admin API takes them). */
  async market(kind: "binary" | "index" = "binary", fields: Record<string, unknown> = {}): Promise<string> {
    const id = (fields.id as string | undefined) ?? unique(kind);
    await this.admin("POST", "/markets", {
      id,
      name: id,
      type: kind,
      close_time: 4_102_444_800_000,
      ...fields,
    });
    await this.admin("POST", `/markets/${id}/open`);
    return id;
  }
}

let shared: Promise<TestServer> | null = null;

/**
 * The server this test file uses: the one the runner started (`BALLAST_TEST_PORT` and
 * `BALLAST_TEST_DATA_DIR`), or one of its own, stopped when the file's tests are done.
 */
export function sharedServer(): Promise<TestServer> {
  if (shared === null) {
    const port = process.env.BALLAST_TEST_PORT;
    const dataDir = process.env.BALLAST_TEST_DATA_DIR;
    if (port !== undefined && dataDir !== undefined) {
      shared = Promise.resolve(TestServer.attach(Number(port), dataDir));
    } else {
      shared = TestServer.start({ env: NO_LIMITS });
      after(async () => {
        await (await (shared as Promise<TestServer>)).dispose();
      });
    }
  }
  return shared;
}

/** Limits high enough that tests about other things are never rate limited. */
export const NO_LIMITS: Record<string, string> = {
  BALLAST_PUBLIC_RATE_LIMIT: "1000000000",
  BALLAST_PRIVATE_RATE_LIMIT: "1000000000",
};

/**
 * Wait for the next minute if fewer than `marginMs` are left in this one: rate windows are fixed
 * minutes, and a test counting requests must not straddle two.
 */
export async function freshWindow(marginMs = 5000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < marginMs) {
    await new Promise((r) => setTimeout(r, left + 50));
  }
}
