/**
 * Request signing, exactly as the API specification gives it: the lower-case hex
 * HMAC-SHA256, keyed with the API secret, of `timestamp + METHOD + path + body` — the Unix time
 * in milliseconds as decimal text, the upper-case method, the path as sent (with `/v1` and the
 * query string, e.g. `/v1/orders?status=open`) and the exact body (empty for GET and DELETE).
 *
 * HMAC runs on `node:crypto` in Node and on Web Crypto (`globalThis.crypto.subtle`) in browsers.
 */

export const SIGNATURE_HEADER = "X-BM-Signature";
export const TIMESTAMP_HEADER = "X-BM-Timestamp";

/** The part of Web Crypto's `SubtleCrypto` the SDK uses. */
interface Subtle {
  importKey(
    format: "raw",
    keyData: Uint8Array,
    algorithm: { name: "HMAC"; hash: "SHA-256" },
    extractable: boolean,
    usages: readonly "sign"[],
  ): Promise<unknown>;
  sign(algorithm: "HMAC", key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
  digest(algorithm: "SHA-256", data: Uint8Array): Promise<ArrayBuffer>;
}

let subtlePromise: Promise<Subtle> | null = null;
// A variable, so that bundlers for the browser leave Node's module alone (browsers never need it).
const NODE_CRYPTO = "node:crypto";

/** Web Crypto's `subtle`: the global one (Node 19+, browsers), else `node:crypto`'s (Node 18). */
export function subtle(): Promise<Subtle> {
  if (subtlePromise === null) {
    const global = (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
    subtlePromise =
      global !== undefined
        ? Promise.resolve(global)
        : (import(NODE_CRYPTO) as Promise<unknown>).then((mod) => {
            const found = (mod as unknown as { webcrypto?: { subtle?: Subtle } }).webcrypto?.subtle;
            if (found === undefined) {
              throw new Error("no Web Crypto here: the SDK needs globalThis.crypto.subtle");
            }
            return found;
          });
  }
  return subtlePromise;
}

const encoder = new TextEncoder();
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lower-case hex of bytes. */
export function toHex(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i += 1) {
    out += HEX[bytes[i] as number];
  }
  return out;
}

function message(timestamp: string, method: string, path: string, body: string | Uint8Array): Uint8Array {
  const head = encoder.encode(`${timestamp}${method.toUpperCase()}${path}`);
  if (typeof body === "string") {
    return body === "" ? head : encoder.encode(`${timestamp}${method.toUpperCase()}${path}${body}`);
  }
  const joined = new Uint8Array(head.length + body.length);
  joined.set(head, 0);
  joined.set(body, head.length);
  return joined;
}

/** How a `Signer` computes HMACs: `node:crypto` where it exists (Node), else Web Crypto. */
export type SigningBackend = "auto" | "webcrypto" | "node";

type NodeHmac = (secret: string, head: string, body: string | Uint8Array) => string;

interface NodeCrypto {
  createHmac(
    algorithm: "sha256",
    key: string,
  ): { update(data: string | Uint8Array): { update(data: string | Uint8Array): { digest(encoding: "hex"): string } } };
}

let nodeHmacPromise: Promise<NodeHmac | null> | null = null;

/** Node's synchronous HMAC (no thread-pool round trip per signature); `null` outside Node. */
function nodeHmac(): Promise<NodeHmac | null> {
  if (nodeHmacPromise === null) {
    const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
    nodeHmacPromise =
      process?.versions?.node === undefined
        ? Promise.resolve(null)
        : (import(NODE_CRYPTO) as Promise<NodeCrypto>).then(
            (mod) => (secret: string, head: string, body: string | Uint8Array) =>
              mod.createHmac("sha256", secret).update(head).update(body).digest("hex"),
            () => null,
          );
  }
  return nodeHmacPromise;
}

type Backend = { kind: "node"; hmac: NodeHmac } | { kind: "webcrypto"; subtle: Subtle; key: unknown };

/**
 * Signs with one secret. In Node it uses `node:crypto`'s HMAC (synchronous: no thread-pool hop
 * per request); elsewhere Web Crypto (`crypto.subtle`), whose key it imports once. Both give the
 * same signatures (the shared vectors check each).
 */
export class Signer {
  readonly #secret: string;
  readonly #choice: SigningBackend;
  #backend: Backend | null = null;
  #loading: Promise<Backend> | null = null;

  constructor(secret: string, backend: SigningBackend = "auto") {
    this.#secret = secret;
    this.#choice = backend;
  }

  async #load(): Promise<Backend> {
    if (this.#choice !== "webcrypto") {
      const hmac = await nodeHmac();
      if (hmac !== null) {
        return { kind: "node", hmac };
      }
      if (this.#choice === "node") {
        throw new Error("node:crypto is not available here");
      }
    }
    const s = await subtle();
    const key = await s.importKey("raw", encoder.encode(this.#secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    return { kind: "webcrypto", subtle: s, key };
  }

  /** The hex signature of `timestamp + METHOD + path + body`. */
  async sign(timestamp: string, method: string, path: string, body: string | Uint8Array = ""): Promise<string> {
    let backend = this.#backend;
    if (backend === null) {
      this.#loading ??= this.#load();
      backend = await this.#loading;
      this.#backend = backend;
    }
    if (backend.kind === "node") {
      return backend.hmac(this.#secret, `${timestamp}${method.toUpperCase()}${path}`, body);
    }
    return toHex(await backend.subtle.sign("HMAC", backend.key, message(timestamp, method, path, body)));
  }
}

/**
 * The hex signature of one request: `sign(secret, timestamp, method, path, body)`. A string body
 * is UTF-8 encoded.
 *
 * ```ts
 * await sign("bmkt_secret_xyz789", "1742034665000", "GET", "/v1/orders?status=open")
 * // "b74197599a9ae7c6ba2e75849463e9d9953ba7bc195f63797dceca128d5441c4"
 * ```
 */
export function sign(
  secret: string,
  timestamp: string | number,
  method: string,
  path: string,
  body: string | Uint8Array = "",
): Promise<string> {
  return new Signer(secret).sign(String(timestamp), method, path, body);
}

/** The hex SHA-256 of a UTF-8 string (settlement evidence hashes). */
export async function sha256Hex(text: string): Promise<string> {
  const s = await subtle();
  return toHex(await s.digest("SHA-256", encoder.encode(text)));
}
