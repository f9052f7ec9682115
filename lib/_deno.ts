// Deno's file system, reached only through this guard: the library loads in any runtime, and what
// needs files throws there with what to use instead.

/**
 * `Deno`, or an `Error` saying that `operation` needs it and what to use instead outside Deno.
 *
 * @param operation What was asked, e.g. "read 'x.npy'".
 * @param instead What works without Deno's file system.
 */
export function denoFileSystem(
  operation: string,
  instead: string,
): typeof Deno {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (typeof deno?.readFile !== "function") {
    throw new Error(
      `Cannot ${operation} as it needs Deno's file system, which this runtime lacks: ${instead}`,
    );
  }
  return deno;
}
