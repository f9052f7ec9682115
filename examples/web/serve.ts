/**
 * Builds the web demo (`deno bundle --platform browser` of `examples/web/main.ts` into
 * `examples/web/dist/main.js`, and the digits models graph-optimized offline into
 * `examples/web/dist/`) and serves it on 127.0.0.1 with the held-out digits and ONNX Runtime
 * Web's WebAssembly file, all from this machine (no CDN).
 *
 *   deno task web [--port 8000] [--no-build]
 *
 * @module
 */
import { parseArgs } from "node:util";

const WEB = new URL("./", import.meta.url);
const DIGITS = new URL("../../reference/models/digits/", import.meta.url);
/** The ONNX Runtime Web package the page is built with (pinned here and in main.ts). */
export const ORT_WEB = "npm:onnxruntime-web@1.30.0";
// Never called: a literal dynamic import puts the package in this module's graph, so that
// import.meta.resolve below finds its WebAssembly file in Deno's npm cache.
export const _ortWebInGraph = () => import("npm:onnxruntime-web@1.30.0/wasm");

interface Route {
  file: URL;
  type: string;
  /** Whether browsers may cache it (ONNX Runtime's files and the model; not the page). */
  cache: boolean;
}

// What the server hands out: URL path → file. Nothing else is reachable.
function routes(): Map<string, Route> {
  const map = new Map<string, Route>();
  const add = (path: string, file: URL, type: string) =>
    map.set(path, { file, type, cache: path !== "/" && path !== "/main.js" });
  add("/", new URL("index.html", WEB), "text/html; charset=utf-8");
  add("/main.js", new URL("dist/main.js", WEB), "text/javascript");
  // The WebAssembly build only: its JavaScript glue is bundled into main.js.
  add(
    "/ort/ort-wasm-simd-threaded.wasm",
    new URL(import.meta.resolve(`${ORT_WEB}/ort-wasm-simd-threaded.wasm`)),
    "application/wasm",
  );
  for (const name of MODELS) {
    add(
      `/models/digits/${name}.onnx`,
      new URL(`dist/${name}.onnx`, WEB),
      "application/octet-stream",
    );
  }
  for (
    const name of [
      "heldout_images.npy",
      "heldout_labels.npy",
      "scheduler/scheduler_config.json",
    ]
  ) {
    add(
      `/models/digits/${name}`,
      new URL(name, DIGITS),
      name.endsWith(".json") ? "application/json" : "application/octet-stream",
    );
  }
  return map;
}

/** The models the page runs, optimized by {@link buildDemo}. */
const MODELS = ["unet", "classifier"] as const;

/**
 * Writes `examples/web/dist/<name>.onnx`: the digits model with ONNX Runtime's graph
 * optimizations up to `extended` applied (constant folding, node fusions; not the
 * layout transforms of `all`, which are specific to this machine's CPU), so that the page
 * creates its sessions with optimizations disabled instead of running the optimizer in
 * WebAssembly at every load.
 */
async function optimizeModels(): Promise<void> {
  const ort = await import("npm:onnxruntime-node@1.30.0");
  for (const name of MODELS) {
    const session = await ort.InferenceSession.create(
      new URL(`${name}.onnx`, DIGITS).pathname,
      {
        graphOptimizationLevel: "extended",
        optimizedModelFilePath: new URL(`dist/${name}.onnx`, WEB).pathname,
      },
    );
    await session.release();
  }
}

/**
 * Bundles `examples/web/main.ts` for browsers into `examples/web/dist/main.js` and writes the
 * graph-optimized models next to it (ONNX Runtime's native build, `npm:onnxruntime-node`).
 */
export async function buildDemo(): Promise<void> {
  await Deno.mkdir(new URL("dist/", WEB), { recursive: true });
  await optimizeModels();
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      "-o",
      new URL("dist/main.js", WEB).pathname,
      new URL("main.ts", WEB).pathname,
    ],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `Cannot build the web demo: deno bundle exited with ${code}\n${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
}

/** A running demo server. */
export interface DemoServer {
  /** The page's URL, `http://127.0.0.1:<port>/`. */
  url: string;
  /** Stops the server. */
  shutdown(): Promise<void>;
}

/**
 * Serves the built demo on 127.0.0.1.
 *
 * @param port The port; 0 picks a free one.
 */
export function serveDemo(port = 0): DemoServer {
  const files = routes();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    async (request) => {
      const route = files.get(new URL(request.url).pathname);
      if (route === undefined) {
        return new Response("not found", { status: 404 });
      }
      try {
        const body = await Deno.readFile(route.file);
        return new Response(body, {
          headers: {
            "content-type": route.type,
            // The page and its script change with every build; the rest is versioned data.
            "cache-control": route.cache ? "max-age=86400" : "no-store",
            // Cross-origin isolation, so that ONNX Runtime Web may use threads.
            "cross-origin-opener-policy": "same-origin",
            "cross-origin-embedder-policy": "require-corp",
          },
        });
      } catch (error) {
        return new Response(`cannot read: ${(error as Error).message}`, {
          status: 500,
        });
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    shutdown: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      "no-build": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task web [--port 8000] [--no-build]\n" +
        "Builds examples/web/ and serves it on 127.0.0.1 (0 picks a free port).",
    );
    Deno.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `Cannot serve as '--port' must be an integer from 0 to 65535: current value is ${values.port}`,
    );
    Deno.exit(2);
  }
  if (!values["no-build"]) await buildDemo();
  const { url } = serveDemo(port);
  console.log(`web demo: ${url}`);
}
