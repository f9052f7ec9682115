// Headless Chromium for browser tests: bundle an entry for the browser (`deno bundle --platform
// browser`), serve files on 127.0.0.1 (a free port), launch Debian's /usr/bin/chromium through
// puppeteer-core (which downloads no browser) with WebGPU enabled and a fresh profile, and run a
// page, keeping its console so that a failure can print it.
//
//   const session = await launch();
//   const server = serve({ files: { "/app.js": await bundle(entry) }, dirs: { "/data/": dir } });
//   const page = await openPage(session, `${server.url}/`);
//   const value = await page.evaluate(() => globalThis.answer);   // page.console: string[]
//   await page.close(); await server.close(); await session.close();
//
// Tests are ignored where Chromium is missing (`ignore`), except under CI=true, where that fails.
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether {@link CHROMIUM} exists here. */
export const chromiumInstalled: boolean = await Deno.stat(CHROMIUM).then(
  (s) => s.isFile,
  () => false,
);

/** Whether CI demands the browser tests (`CI=true`). */
export const required = Deno.env.get("CI") === "true";

/** Skip the browser tests: no Chromium, and not under CI. */
export const ignore = !chromiumInstalled && !required;

if (ignore) {
  console.warn(
    `Browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium; CI=true makes this a failure)`,
  );
}

/**
 * Chromium's flags: headless, as root without the sandbox, WebGPU on (SwiftShader's Vulkan where
 * there is no GPU), and nothing fetched from the network.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-gpu-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/**
 * `entry` bundled for the browser with `deno bundle --platform browser`: the JavaScript source.
 *
 * @throws {Error} The bundler failed (its output is in the message).
 */
export async function bundle(entry: URL): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "browser-bundle-" });
  try {
    const out = `${dir}/bundle.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "-o", out, entry.pathname],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(
        `deno bundle ${entry.pathname} failed:\n${
          new TextDecoder().decode(stderr)
        }`,
      );
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A local HTTP server. */
export interface Server {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/** What {@link serve} serves. */
export interface Routes {
  /** Exact paths (`"/"`, `"/app.js"`) and their contents (HTML for `/`, else by extension). */
  files?: Record<string, string | Uint8Array<ArrayBuffer>>;
  /** Path prefixes (`"/reference/"`) served from a directory (a `file:` URL ending in `/`). */
  dirs?: Record<string, URL>;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  onnx: "application/octet-stream",
  npy: "application/octet-stream",
  png: "image/png",
};

function contentType(path: string): string {
  if (path.endsWith("/")) return TYPES.html!;
  return TYPES[path.split(".").pop() ?? ""] ?? "application/octet-stream";
}

/** Serves `routes` on 127.0.0.1, on a free port. */
export function serve(routes: Routes): Server {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      const file = routes.files?.[path];
      if (file !== undefined) {
        return new Response(file, {
          headers: { "content-type": contentType(path) },
        });
      }
      for (const [prefix, dir] of Object.entries(routes.dirs ?? {})) {
        if (!path.startsWith(prefix) || path.includes("..")) continue;
        try {
          const body = await Deno.readFile(
            new URL(path.slice(prefix.length), dir),
          );
          return new Response(body, {
            headers: { "content-type": contentType(path) },
          });
        } catch {
          break;
        }
      }
      return new Response("not found", { status: 404 });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return { url: `http://127.0.0.1:${port}`, close: () => server.shutdown() };
}

/** A running Chromium with its own profile directory. */
export interface ChromiumSession {
  browser: Browser;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Launches {@link CHROMIUM} headless with {@link CHROMIUM_ARGS} (plus `args`) and a fresh profile. */
export async function launch(
  options: { args?: readonly string[] } = {},
): Promise<ChromiumSession> {
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: [
      ...CHROMIUM_ARGS,
      `--user-data-dir=${profile}`,
      ...(options.args ?? []),
    ],
    protocolTimeout: 600_000,
  });
  return {
    browser,
    async close() {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** An open page and everything it printed (console messages, page errors, failed requests). */
export interface OpenPage {
  page: Page;
  console: string[];
  /** Evaluates `fn(arg)` in the page; a failure's message carries the page's console. */
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  close(): Promise<void>;
}

/** Opens `url` in a new page and waits for it to load. */
export async function openPage(
  session: ChromiumSession,
  url: string,
): Promise<OpenPage> {
  const page = await session.browser.newPage();
  const log: string[] = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${(e as Error).message}`));
  page.on("requestfailed", (r) => log.push(`[requestfailed] ${r.url()}`));
  page.setDefaultTimeout(600_000);
  await page.goto(url, { waitUntil: "load" });
  return {
    page,
    console: log,
    async evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> {
      try {
        // deno-lint-ignore no-explicit-any
        return await page.evaluate(fn as any, arg) as R;
      } catch (error) {
        throw withConsole(error as Error, log);
      }
    },
    close: () => page.close(),
  };
}

/** `error` with the page's console appended to its message. */
export function withConsole(error: Error, log: readonly string[]): Error {
  return new Error(
    `${error.message}\n--- page console ---\n${
      log.join("\n") || "(empty)"
    }\n--- end of page console ---`,
    { cause: error },
  );
}
