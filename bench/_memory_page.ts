// The page of `bench/memory.ts --browser`: runs one loop of bench/_memory_loop.ts on the page's
// main thread and reports when (epoch milliseconds) each pass ended, so the host can place the
// renderer's RSS, which it samples meanwhile, along the loop.
import { runLoop } from "./_memory_loop.ts";

(globalThis as unknown as {
  memoryLoop: (name: string, backend: string) => unknown;
}).memoryLoop = (name, backend) => {
  const passes: [number, number][] = [[
    0,
    performance.timeOrigin + performance.now(),
  ]];
  const report = runLoop(
    name,
    backend,
    (steps) => passes.push([steps, performance.timeOrigin + performance.now()]),
  );
  return { ...report, passes };
};
