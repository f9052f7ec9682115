// Loading the WebAssembly kernels: the embedded module compiled once per process where the
// runtime has WebAssembly SIMD (feature detection by validation), and the exports the kernels
// call (wasm/kernels.ts).
import { KERNELS_WASM_BASE64 } from "../_kernels_wasm.ts";

/** The module's exports (see wasm/kernels.ts). */
export type Exports = {
  memory: WebAssembly.Memory;
  params(): number;
  sweep(order: number, mode: number, noisy: number): void;
  absOrderStat(
    x: number,
    n: number,
    k: number,
    wantNext: number,
    hist: number,
    scratch: number,
  ): number;
  nextStat(): number;
  convertedOrderStat(
    x: number,
    q: number,
    n: number,
    k: number,
    wantNext: number,
    hist: number,
    scratch: number,
  ): number;
  lastHit(): number;
  streamFloor(
    out: number,
    converted: number,
    x: number,
    modelOutput: number,
    h1: number,
    h2: number,
    history: number,
    n: number,
  ): void;
};

// The compiled module: undefined before the first try, null where the runtime cannot run it
// synchronously (no WebAssembly, no SIMD, or a browser's main thread refusing to compile a
// module over 4 KB synchronously; there it is compiled in the background and set when ready).
let compiled: WebAssembly.Module | null | undefined;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const binary = atob(KERNELS_WASM_BASE64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The compiled module, or null where the runtime cannot compile it synchronously. */
export function tryCompile(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  if (typeof WebAssembly !== "object") return null;
  const bytes = moduleBytes();
  // Feature detection: the module validates only where SIMD (and the rest it uses) exists.
  if (!WebAssembly.validate(bytes)) return null;
  try {
    compiled = new WebAssembly.Module(bytes);
    return compiled;
  } catch {
    // A browser's main thread: compile in the background, usable from the next call on.
    WebAssembly.compile(bytes).then((module) => {
      try {
        // Instantiating may be refused synchronously too; then stay with the fallback.
        new WebAssembly.Instance(module, {
          env: { memory: new WebAssembly.Memory({ initial: 2 }) },
        });
        compiled = module;
      } catch { /* the TypeScript kernels remain the default */ }
    }, () => {});
    return null;
  }
}

/**
 * The compiled module.
 *
 * @throws {TypeError} The runtime cannot compile it synchronously.
 */
export function kernelsModule(): WebAssembly.Module {
  const module = tryCompile();
  if (module === null) {
    throw new TypeError(
      "Cannot create WasmKernels as this runtime cannot compile WebAssembly SIMD synchronously: use cpuKernels (WasmKernels.supported() tells)",
    );
  }
  return module;
}

/** Whether `WebAssembly.Memory` can hand out a resizable buffer (views survive growth). */
export function resizableSupported(): boolean {
  return typeof (WebAssembly.Memory.prototype as {
    toResizableBuffer?: unknown;
  })
    .toResizableBuffer === "function";
}
