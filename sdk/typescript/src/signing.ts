/**
 * Request signing, exactly as the API specification gives it: the lower-case hex
 * HMAC-SHA256, keyed with the API secret, of `timestamp + METHOD + path + body` — the Unix time
 * in milliseconds as decimal text, the upper-case method, the path as sent (with `/v1` and the
 * query string, e.g. `/v1/orders?status=open`) and the exact body (empty for GET and DELETE).
 *
 * HMAC runs through Web Crypto (`globalThis.crypto.subtle`), in Node 18+ and in browsers alike.
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

/**
 * Signs with one secret; the HMAC key is imported once and reused (signing is then one Web
 * Crypto call).
 */
export class Signer {
  readonly #secret: string;
  #key: Promise<unknown> | null = null;

  constructor(secret: string) {
    this.#secret = secret;
  }

  #cryptoKey(): Promise<unknown> {
    if (this.#key === null) {
      this.#key = subtle().then((s) =>
        s.importKey("raw", encoder.encode(this.#secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      );
    }
    return this.#key;
  }

  /** The hex signature of `timestamp + METHOD + path + body`. */
  async sign(timestamp: string, method: string, path: string, body: string | Uint8Array = ""): Promise<string> {
    const [s, key] = await Promise.all([subtle(), this.#cryptoKey()]);
    return toHex(await s.sign("HMAC", key, message(timestamp, method, path, body)));
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
