// The WebGPU tests' shared switch: `ignore` is true where no adapter exists, so `deno test`
// passes there (and says so), except under CI=true, where a missing adapter fails the suite.
const adapter = await navigator.gpu?.requestAdapter().catch(() => null) ??
  null;

/** Whether CI demands the WebGPU tests (`CI=true`). */
export const required = Deno.env.get("CI") === "true";

/** Whether a WebGPU adapter exists here. */
export const available = adapter !== null;

/** Skip the WebGPU tests: no adapter, and not under CI. */
export const ignore = !available && !required;

/** The adapter's description, for test output. */
export const adapterName = adapter
  ? `${adapter.info.description || adapter.info.vendor}${
    adapter.info.isFallbackAdapter ? " (fallback adapter)" : ""
  }`
  : "none";

if (ignore) {
  console.warn(
    "WebGPU tests skipped: navigator.gpu has no adapter (install mesa-vulkan-drivers for llvmpipe; CI=true makes this a failure)",
  );
}
