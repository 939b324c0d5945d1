/**
 * The WebSocket the stream runs on: the `WebSocket` global where there is one (browsers, Node
 * 22+), the `ws` package in Node where there is not. Both speak the same WHATWG interface.
 */

/** The part of the WHATWG `WebSocket` the stream uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
  /** `ws` only: drop the connection at once, without a closing handshake. */
  terminate?: () => void;
}

type SocketConstructor = new (url: string) => SocketLike;

// A variable, so that bundlers for the browser leave the Node package alone.
const WS_PACKAGE = "ws";
let constructorPromise: Promise<SocketConstructor> | null = null;

/** The WebSocket class: the global one, else `ws`'s. */
export function socketConstructor(): Promise<SocketConstructor> {
  if (constructorPromise === null) {
    const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    constructorPromise =
      global !== undefined
        ? Promise.resolve(global)
        : (import(WS_PACKAGE) as Promise<{ WebSocket?: SocketConstructor; default?: SocketConstructor }>).then(
            (mod) => {
              const found = mod.WebSocket ?? mod.default;
              if (found === undefined) {
                throw new Error("the ws package has no WebSocket export");
              }
              return found;
            },
          );
    constructorPromise.catch(() => {
      constructorPromise = null; // let a later call try again
    });
  }
  return constructorPromise;
}

/** Close now: `terminate()` where `ws` offers it (a dead peer never answers a close). */
export function abortSocket(socket: SocketLike): void {
  try {
    if (socket.terminate !== undefined) {
      socket.terminate();
    } else {
      socket.close();
    }
  } catch {
    // already closed
  }
}

/** Text of a message event's data (the stream speaks JSON text frames). */
export function frameText(data: unknown): string | null {
  if (typeof data === "string") {
    return data;
  }
  if (data instanceof ArrayBuffer) {
    return new TextDecoder().decode(data);
  }
  if (ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(data);
  }
  return null;
}
