/// <reference lib="dom" />
/**
 * The web demo's page: loads the digits UNet and classifier into ONNX Runtime Web (WebAssembly,
 * files served by `serve.ts`), picks the scheduler's kernels (WebGPU on a hardware adapter,
 * WebAssembly otherwise; `?backend=wasm` or `?backend=webgpu` chooses), then inverts a held-out
 * digit, reconstructs it and
 * edits it to the ten classes, drawing the images, the inverse schedule and a progress bar.
 *
 * `window.demo` exposes the state and `roundTrip(index, steps)` for `tests/browser/web_demo_test.ts`.
 *
 * @module
 */
import * as ort from "npm:onnxruntime-web@1.30.0/wasm";
import {
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  Tensor,
} from "../../mod.ts";
import { decodeNpy } from "../../npy.ts";
import { createWebGpuKernels, type WebGpuKernels } from "../../webgpu.ts";
import {
  cpuBackend,
  type DemoContext,
  type DemoState,
  gpuBackend,
  invertImage,
  ortClassifier,
  ortModel,
  psnr,
  regenerate,
  repeat,
  type StepBackend,
  warmUp,
} from "./_demo.ts";

const MODEL = new URL("models/digits/", location.href).href;
const PICKER_COUNT = 24;
const GUIDANCE = 3;
const EDIT_STRENGTH = 0.5;

const state: DemoState = {
  status: "loading",
  timings: { script: Math.round(performance.now()) },
};
(globalThis as unknown as { demo: DemoState }).demo = state;

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;

function say(text: string) {
  $("status").textContent = text;
}

/** Draws a [1, 8, 8] image on a canvas: [lo, hi] → white..black. */
function draw(
  canvas: HTMLCanvasElement,
  image: Tensor,
  range: [number, number] = [-1, 1],
) {
  const v = image.toFloat32Array();
  const ctx = canvas.getContext("2d")!;
  const pixels = ctx.createImageData(8, 8);
  for (let i = 0; i < 64; i++) {
    const ink = Math.min(
      1,
      Math.max(0, (v[i]! - range[0]) / (range[1] - range[0])),
    );
    const g = Math.round(255 * (1 - ink));
    pixels.data.set([g, g, g, 255], 4 * i);
  }
  ctx.putImageData(pixels, 0, 0);
}

function tile(label: string, size = 8): HTMLElement {
  const figure = document.createElement("figure");
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(canvas, caption);
  return figure;
}

/**
 * Plots the inverse schedule's sigmas against the step, log scale. Returns a function that moves
 * the marker to a step (the plot itself is drawn once per run).
 */
function plotSchedule(
  sigmas: Float32Array,
  steps: number,
): (current: number) => void {
  const w = 360, h = 160, left = 44, bottom = 26, top = 10, right = 10;
  const logs = Array.from(sigmas.subarray(0, steps + 1), (s) => Math.log10(s));
  const lo = Math.floor(Math.min(...logs)), hi = Math.ceil(Math.max(...logs));
  const x = (i: number) => left + (i / steps) * (w - left - right);
  const y = (l: number) =>
    top + (1 - (l - lo) / (hi - lo)) * (h - top - bottom);
  const points = logs.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`);
  const ticks = [];
  for (let l = lo; l <= hi; l++) {
    ticks.push(
      `<line x1="${left - 4}" x2="${w - right}" y1="${y(l)}" y2="${
        y(l)
      }" class="grid"/>` +
        `<text x="${left - 6}" y="${y(l) + 4}" text-anchor="end">1e${l}</text>`,
    );
  }
  $("schedule").innerHTML =
    `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="inverse schedule">` +
    ticks.join("") +
    `<polyline points="${points.join(" ")}" class="line"/>` +
    logs.map((l, i) =>
      `<circle cx="${x(i)}" cy="${y(l)}" r="1.6" class="dot"/>`
    ).join("") +
    `<circle r="4" class="marker" visibility="hidden"/>` +
    `<text x="${(left + w - right) / 2}" y="${
      h - 6
    }" text-anchor="middle">step (inversion, t = 0 → ${steps})</text>` +
    `<text x="12" y="${top + 60}" transform="rotate(-90 12 ${
      top + 60
    })" text-anchor="middle">sigma</text>` +
    `</svg>`;
  const marker = $("schedule").querySelector(".marker")!;
  return (current) => {
    marker.setAttribute("cx", `${x(current)}`);
    marker.setAttribute("cy", `${y(logs[current]!)}`);
    marker.setAttribute("visibility", "visible");
  };
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`Cannot fetch '${url}': HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

const BACKENDS = ["wasm", "webgpu"] as const;

/**
 * The WebGPU kernels for the scheduler, or null for the WebAssembly ones: none when asked for
 * WebAssembly or without an adapter, and none on a fallback adapter (WebGPU emulated on the CPU,
 * SwiftShader in headless Chromium) unless asked for WebGPU: there every step waits for a
 * readback through the GPU process, and the first result came 0.6 s later than on the
 * WebAssembly kernels (docs/browser.md).
 */
async function schedulerGpu(
  asked: string | null,
): Promise<{ gpu: WebGpuKernels | null; fallback: string | null }> {
  const none = { gpu: null, fallback: null };
  if (asked === "wasm") return none;
  const adapter = await (navigator as { gpu?: GPU }).gpu?.requestAdapter()
    .catch(() => null);
  if (!adapter) return none;
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  if (info.isFallbackAdapter && asked !== "webgpu") {
    return {
      gpu: null,
      fallback: info.architecture || info.vendor || "unknown",
    };
  }
  const device = await adapter.requestDevice().catch(() => null);
  return device
    ? { gpu: await createWebGpuKernels({ device }), fallback: null }
    : none;
}

async function main() {
  const query = new URLSearchParams(location.search);
  const asked = query.get("backend");
  if (asked !== null && !(BACKENDS as readonly string[]).includes(asked)) {
    throw new RangeError(
      `'?backend' must be one of ${
        BACKENDS.join(", ")
      } (or absent): current value is ${asked}`,
    );
  }
  const timings = state.timings!;
  const timed = <T>(name: string, promise: Promise<T>) =>
    promise.then((value) => {
      timings[name] = Math.round(performance.now());
      return value;
    });
  say("loading ONNX Runtime Web, the model and the held-out digits…");
  // Only the WebAssembly file's URL (index.html preloads it): ONNX Runtime then runs the glue
  // bundled into main.js rather than importing it from the server first.
  ort.env.wasm.wasmPaths = {
    wasm: new URL("ort/ort-wasm-simd-threaded.wasm", location.href).href,
  };
  // One thread by default: two were not faster on this tiny model and used more CPU (measured
  // with bench/web_first_result.ts on a loaded 2-core machine). `?threads=n` sets the
  // count; threads need cross-origin isolation, which serve.ts provides (COOP/COEP headers).
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated
    ? Number(query.get("threads") ?? 1)
    : 1;
  timings.threads = ort.env.wasm.numThreads;
  // A session from the model's URL starts ONNX Runtime's WebAssembly at once, then fetches the
  // model (preloaded by index.html). serve.ts graph-optimized the models when it built the
  // demo, so the sessions skip ONNX Runtime's optimizer.
  const session = (name: string) =>
    timed(
      name,
      ort.InferenceSession.create(`${MODEL}${name}.onnx`, {
        graphOptimizationLevel: "disabled",
      }),
    );
  let unetLoaded = false;
  const unetReady = session("unet").then((unet) => {
    unetLoaded = true;
    return unet;
  });
  const npy = (name: string) =>
    fetchBytes(`${MODEL}${name}.npy`).then((b) => decodeNpy(b, `${name}.npy`));
  // The picker is drawn as soon as the digits arrive, while ONNX Runtime compiles.
  const picker = $("picker");
  const digitsReady = timed(
    "digits",
    Promise.all([npy("heldout_images"), npy("heldout_labels")]).then(
      ([images, labels]) => {
        const digits = new Tensor(images.data as Float32Array, images.shape);
        const classes = labels.data as Int32Array;
        for (let i = 0; i < PICKER_COUNT; i++) {
          const figure = tile(`${classes[i]}`);
          figure.dataset.index = `${i}`;
          draw(figure.querySelector("canvas")!, digits.slice(0, i, i + 1));
          picker.append(figure);
        }
        return { digits, classes };
      },
    ),
  );
  // The scheduler config straight from the model folder's URL.
  const inverseReady = DPMSolverMultistepInverseScheduler.fromPretrained(
    MODEL,
    { subfolder: "scheduler" },
  );
  const gpuReady = timed(
    "webgpu",
    schedulerGpu(asked),
  );
  // Five steps each way on zeros build the WebGPU kernels' pipelines while the model loads, so
  // that the GPU process compiles them then, not at the first step. Skipped when the adapter
  // arrives after the model (it would only delay the first step). Not awaited: its work is
  // submitted at once and the first step queues behind it.
  Promise.all([gpuReady, inverseReady]).then(([{ gpu }, inverse]) => {
    if (gpu && !unetLoaded) {
      return timed("warmed", warmUp(gpuBackend(gpu), inverse.toJSON()));
    }
  }).catch((error) => {
    state.status = "error";
    state.error = String((error as Error).stack ?? error);
    say(`error: ${(error as Error).message}`);
  });
  const [unet, { digits, classes }, inverse, { gpu, fallback }] = await Promise
    .all([
      unetReady,
      digitsReady,
      inverseReady,
      gpuReady,
    ]);
  timings.loaded = Math.round(performance.now());
  const config = inverse.toJSON();
  const onnx = `the UNet runs in ONNX Runtime Web on WebAssembly, ${
    ort.env.wasm.numThreads === 1
      ? "1 thread"
      : `${ort.env.wasm.numThreads} threads`
  }${
    globalThis.crossOriginIsolated
      ? ""
      : " (the page is not cross-origin isolated)"
  }.`;
  let backend: StepBackend<never>;
  if (gpu) {
    backend = gpuBackend(gpu) as StepBackend<never>;
    $("backend").textContent =
      `Scheduler steps run on WebGPU (WebGpuKernels); ${onnx}`;
  } else {
    // CPU tensors run on the default kernels: WebAssembly SIMD where this browser compiles it.
    const kernels = defaultKernels().name === "wasm"
      ? "the WebAssembly kernels"
      : "the TypeScript kernels (no WebAssembly SIMD here)";
    backend = cpuBackend as StepBackend<never>;
    $("backend").textContent = asked === "wasm"
      ? `Scheduler steps run on ${kernels} (asked with ?backend=wasm); ${onnx}`
      : fallback
      ? `WebGPU here is a fallback adapter emulated on the CPU (${fallback}): scheduler steps run on ${kernels}, which are faster there (?backend=webgpu uses WebGPU anyway); ${onnx}`
      : `No WebGPU adapter here: scheduler steps run on ${kernels}; ${onnx}`;
  }
  state.backend = backend.name;
  // The UNet's share of the first round trip, for bench/web_first_result.ts.
  const unetModel = ortModel(ort, unet);
  let unetMs = 0;
  const ctx: DemoContext<never> = {
    model: async (...args) => {
      const start = performance.now();
      const out = await unetModel(...args);
      unetMs += performance.now() - start;
      return out;
    },
    config,
    backend,
  };
  // The classifier is needed only for the edits: it loads after the first result.
  let classifierReady: Promise<ort.InferenceSession> | undefined;
  const item = (i: number) => digits.slice(0, i, i + 1);

  const results = $("results");
  const original = tile("original"),
    noise = tile("inverted noise"),
    recon = tile("reconstruction");
  results.append(original, noise, recon);
  const edits = $("edits");
  const editTiles = Array.from({ length: 10 }, (_, c) => tile(`→ ${c}`));
  edits.append(...editTiles);

  const progress = $("progress") as HTMLProgressElement;
  let busy = false;

  async function roundTrip(
    index: number,
    steps: number,
    onStep: (
      phase: "invert" | "generate",
      step: number,
    ) => Promise<void> | void,
  ) {
    const image = item(index);
    const label = Int32Array.of(classes[index]!);
    const inverted = await invertImage(ctx, image, label, steps, 1, onStep);
    const reconstruction = await regenerate(
      ctx,
      inverted,
      label,
      steps,
      1,
      onStep,
    );
    return {
      image,
      label,
      inverted,
      reconstruction,
      psnr: psnr(image, reconstruction),
    };
  }

  async function run(index: number) {
    if (busy) return;
    busy = true;
    state.status = "running";
    const steps = Number(($("steps") as HTMLInputElement).value);
    const editSteps = Math.trunc(steps * EDIT_STRENGTH);
    const total = 2 * steps + 2 * editSteps;
    let done = 0;
    progress.max = total;
    progress.value = 0;
    picker.querySelectorAll("figure").forEach((f) =>
      f.classList.toggle("selected", f.dataset.index === `${index}`)
    );
    inverse.setTimesteps(steps);
    const mark = plotSchedule(inverse.sigmas, steps);
    let lastPaint = performance.now(), paintMs = 0;
    const tick = async (phase: "invert" | "generate", step: number) => {
      progress.value = ++done;
      if (phase === "invert" && done <= steps) mark(step);
      // Let the page paint now and then.
      const now = performance.now();
      if (now - lastPaint > 50) {
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
        lastPaint = performance.now();
        paintMs += lastPaint - now;
      }
    };
    try {
      say(
        `held-out digit #${index} (class ${
          classes[index]
        }): inverting and reconstructing, ${steps} steps each way…`,
      );
      const loopStart = performance.now();
      unetMs = 0;
      const r = await roundTrip(index, steps, tick);
      draw(original.querySelector("canvas")!, r.image);
      draw(noise.querySelector("canvas")!, r.inverted.sample, [-3, 3]);
      draw(recon.querySelector("canvas")!, r.reconstruction);
      recon.querySelector("figcaption")!.textContent = `reconstruction, ${
        r.psnr.toFixed(1)
      } dB`;
      Object.assign(state, {
        digit: index,
        label: classes[index],
        steps,
        psnr: r.psnr,
      });
      if (state.firstResultMs === undefined) {
        state.firstResultMs = performance.now();
        Object.assign(timings, {
          loopMs: Math.round(state.firstResultMs - loopStart),
          unetMs: Math.round(unetMs),
          paintMs: Math.round(paintMs),
        });
        $("timing").textContent = `first result ${
          (state.firstResultMs / 1000).toFixed(2)
        } s after the page started loading`;
      }
      classifierReady ??= session("classifier");
      say(
        `held-out digit #${index}: round trip ${
          r.psnr.toFixed(2)
        } dB; editing to the ten classes (guidance ${GUIDANCE}, strength ${EDIT_STRENGTH})…`,
      );
      // Edits: invert the first half of the schedule once, regenerate ten copies, one per class.
      const partial = await invertImage(
        ctx,
        r.image,
        r.label,
        steps,
        EDIT_STRENGTH,
        tick,
      );
      const targets = Int32Array.from({ length: 10 }, (_, c) => c);
      const edited = await regenerate(
        ctx,
        { sample: repeat(partial.sample, 10), sigma: partial.sigma },
        targets,
        steps,
        GUIDANCE,
        tick,
      );
      const predicted = await ortClassifier(ort, await classifierReady)(edited);
      editTiles.forEach((figure, c) => {
        draw(figure.querySelector("canvas")!, edited.slice(0, c, c + 1));
        figure.querySelector("figcaption")!.textContent = `→ ${c} (reads ${
          predicted[c]
        })`;
        figure.classList.toggle("miss", predicted[c] !== c);
      });
      state.edits = Array.from(predicted);
      const hits = targets.filter((c, i) => predicted[i] === c).length;
      say(
        `held-out digit #${index}: round trip ${
          r.psnr.toFixed(2)
        } dB; the classifier reads ${hits} of 10 edits as their target class`,
      );
      state.status = "done";
    } catch (error) {
      state.status = "error";
      state.error = String((error as Error).stack ?? error);
      say(`error: ${(error as Error).message}`);
      console.error(error);
    } finally {
      busy = false;
    }
  }

  state.roundTrip = async (index, steps) => {
    const r = await roundTrip(index, steps, () => {});
    return { psnr: r.psnr, label: r.label[0]! };
  };
  picker.addEventListener("click", (event) => {
    const figure = (event.target as HTMLElement).closest("figure");
    if (figure) run(Number(figure.dataset.index));
  });
  ($("steps") as HTMLInputElement).addEventListener("change", () => {
    const selected = picker.querySelector<HTMLElement>("figure.selected");
    run(Number(selected?.dataset.index ?? 0));
  });
  await run(0);
}

// ONNX Runtime's worker threads load this same script (its WebAssembly glue is bundled in):
// only the page runs the demo.
if (globalThis.document) {
  main().catch((error) => {
    state.status = "error";
    state.error = String((error as Error).stack ?? error);
    say(`error: ${(error as Error).message}`);
    console.error(error);
  });
}
