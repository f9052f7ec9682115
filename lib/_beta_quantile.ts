// SciPy's `beta.ppf`, from @stdlib (a port of the Boost inverse incomplete beta SciPy uses).
// @stdlib's tree loads npm's `debug`, which lists every environment variable when it loads; under
// Deno that needs env permission. It is loaded only where that permission is already granted (or
// outside Deno), so importing this module never prompts or fails; beta sigmas say what is missing.

type Quantile = (p: number, alpha: number, beta: number) => number;

function envGranted(): boolean {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  return !deno ||
    deno.permissions.querySync({ name: "env" }).state === "granted";
}

const quantile: Quantile | null = envGranted()
  ? (await import("@stdlib/stats-base-dists-beta-quantile")).default
  : null;

/** The `p` quantile of Beta(alpha, beta). */
export function betaQuantile(p: number, alpha: number, beta: number): number {
  if (quantile === null) {
    throw new Error(
      "Cannot compute beta sigmas ('use_beta_sigmas') as the beta quantile (@stdlib/stats-base-dists-beta-quantile) reads environment variables when it loads: run Deno with --allow-env",
    );
  }
  return quantile(p, alpha, beta);
}
