// README's plain loop on a Chromium page's main thread (issue 15: fast and bounded in browsers
// too): which kernels the page gets by default, and the module's memory over 1,000 steps per
// configuration, exactly as tests/memory_test.ts runs them in Deno. The harness calls
// `globalThis.runPlainLoops()`.
import { defaultKernels } from "../../mod.ts";
import {
  MEMORY_CONFIGS,
  type PlainLoopMemory,
  plainLoopMemory,
} from "../_memory_loop.ts";

/** The page's first look at the default kernels, and each configuration's loop. */
export interface PlainLoopsReport {
  /** `defaultKernels().name` at the page's first call, before any step. */
  firstDefault: string;
  loops: (PlainLoopMemory & { name: string })[];
}

const firstDefault = defaultKernels().name;

(globalThis as unknown as { runPlainLoops: () => PlainLoopsReport })
  .runPlainLoops = () => ({
    firstDefault,
    loops: MEMORY_CONFIGS.map(([name, config]) => ({
      name,
      ...plainLoopMemory(config),
    })),
  });
