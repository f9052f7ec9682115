// The quantile of the beta distribution (SciPy's `beta.ppf`, which diffusers' beta sigmas call),
// dependency-free and synchronous, in float64: the regularized incomplete beta I_x(a, b) by its
// continued fraction (modified Lentz), inverted by Halley's method inside a bisection bracket.
// Checked against SciPy 1.17's values in tests/beta_quantile_test.ts.

const EPS = 2 ** -52;
const TINY = 1e-300;
const HALF_LOG_2PI = 0.9189385332046727; // ln(2π) / 2
const SQRT_2PI = 2.5066282746310002; // √(2π)

/**
 * The `p` quantile of Beta(alpha, beta): the x in [0, 1] with I_x(alpha, beta) = p.
 *
 * @param p The probability, in [0, 1].
 * @param alpha The first shape parameter, a finite number > 0.
 * @param beta The second shape parameter, a finite number > 0.
 * @returns The quantile, in [0, 1].
 * @throws {RangeError} `p` outside [0, 1] or a shape parameter that is not finite and positive.
 */
export function betaQuantile(p: number, alpha: number, beta: number): number {
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(
      `Cannot compute the beta quantile as 'p' must be in [0, 1]: current value is ${p}`,
    );
  }
  for (const [name, value] of [["alpha", alpha], ["beta", beta]] as const) {
    if (!(value > 0 && Number.isFinite(value))) {
      throw new RangeError(
        `Cannot compute the beta quantile as '${name}' must be a finite number > 0: current value is ${value}`,
      );
    }
  }
  if (p === 0 || p === 1) return p;
  const q = 1 - p;
  const logB = logBeta(alpha, beta);
  // Solve in the smaller tail, whose probability is exact: P(x) = p or Q(x) = q.
  const lower = p <= 0.5;
  // Start from the tail's leading term: I_x ≈ x^a / (a·B) near 0, 1 − I_x ≈ (1−x)^b / (b·B) near 1.
  let x = lower
    ? tailRoot(p, alpha, beta, logB)
    : 1 - tailRoot(q, beta, alpha, logB);
  // Where the estimate is below 1e-200 (or within 1e-17 of 1), the tail's next term changes it
  // by a relative O(x), nothing in float64: it is the answer (0 where it underflows).
  if (lower ? x < 1e-200 : x === 1) return x;
  let lo = 0;
  let hi = 1;
  if (!(x > lo && x < hi)) x = 0.5;
  for (let iteration = 0; iteration < 200; iteration++) {
    const { lowerTail, upperTail, density } = incompleteBeta(
      x,
      alpha,
      beta,
      logB,
    );
    // f(x) = P(x) − p, increasing in x; in the upper tail f = q − Q(x), the same function.
    const f = lower ? lowerTail - p : q - upperTail;
    if (f === 0) return x;
    if (f < 0) lo = x;
    else hi = x;
    let next = NaN;
    if (density > 0 && Number.isFinite(density)) {
      const newton = f / density;
      // Halley: f''/f' = (a − 1)/x − (b − 1)/(1 − x).
      const curvature = (alpha - 1) / x - (beta - 1) / (1 - x);
      const denominator = 1 - 0.5 * newton * curvature;
      const step = denominator > 0.5 ? newton / denominator : newton;
      next = x - step;
    }
    if (!(next > lo && next < hi)) {
      // Outside the bracket: bisect (geometrically near 0, where the quantile can be tiny).
      next = lo > 0 && hi / lo > 4 ? Math.sqrt(lo * hi) : lo + (hi - lo) / 2;
      if (lo === 0) next = Math.min(next, hi / 16);
      if (hi === 1 && lo > 0.5) next = 1 - (1 - lo) / 2;
    }
    if (Math.abs(next - x) <= 2 * EPS * x || next === lo || next === hi) {
      return next;
    }
    x = next;
  }
  return x;
}

// (t·a·B(a, b))^(1/a), by pow where the base is a normal float64, by logs otherwise.
function tailRoot(t: number, a: number, b: number, logB: number): number {
  const base = t * a * beta(a, b, logB);
  return base >= 1e-305 && Number.isFinite(base)
    ? Math.pow(base, 1 / a)
    : Math.exp((Math.log(t * a) + logB) / a);
}

// P = I_x(a, b), Q = 1 − P (each computed directly in its own tail) and the density at x.
function incompleteBeta(
  x: number,
  a: number,
  b: number,
  logB: number,
): { lowerTail: number; upperTail: number; density: number } {
  const y = 1 - x;
  // x^a · y^b / B(a, b): by pow where it neither under- nor overflows, by logs otherwise.
  let front = Math.pow(x, a) * Math.pow(y, b) / beta(a, b, logB);
  if (!(front >= 1e-305 && Number.isFinite(front))) {
    front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - logB);
  }
  const density = front / (x * y);
  if (x < (a + 1) / (a + b + 2)) {
    const lowerTail = front * continuedFraction(x, a, b) / a;
    return { lowerTail, upperTail: 1 - lowerTail, density };
  }
  const upperTail = front * continuedFraction(y, b, a) / b;
  return { lowerTail: 1 - upperTail, upperTail, density };
}

// The continued fraction of I_x(a, b) · a·B(a, b) / (x^a (1 − x)^b), modified Lentz.
function continuedFraction(x: number, a: number, b: number): number {
  const sum = a + b;
  let c = 1;
  let d = 1 - sum * x / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    // Even term.
    let term = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
    d = 1 + term * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + term / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    // Odd term.
    term = -(a + m) * (sum + m) * x / ((a + m2) * (a + 1 + m2));
    d = 1 + term * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + term / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return h;
}

// B(a, b), from Γ where it is finite.
function beta(a: number, b: number, logB: number): number {
  return a + b < 140 ? gamma(a) * gamma(b) / gamma(a + b) : Math.exp(logB);
}

// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b).
function logBeta(a: number, b: number): number {
  if (a + b < 140) return Math.log(gamma(a) * gamma(b) / gamma(a + b));
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

// Stirling's series for ln Γ(z) − ((z − ½) ln z − z + ½ ln 2π), z ≥ 16: terms to z^−15.
function stirlingTail(z: number): number {
  const r = 1 / z;
  const r2 = r * r;
  return r * (1 / 12 + r2 * (-1 / 360 + r2 * (1 / 1260 + r2 * (-1 / 1680 +
                r2 * (1 / 1188 + r2 * (-691 / 360360 + r2 * (1 / 156 +
                            r2 * (-3617 / 122400))))))));
}

// Γ(x) for 0 < x < 140: Γ(z) by Stirling's series at z = x + n ≥ 16, divided by the rising
// product x (x + 1) ⋯ (x + n − 1). Each factor is rounded once; z's own rounding, e = x + n − z
// (exact), is put back to first order, Γ(z + e) ≈ Γ(z)·exp(ψ(z)·e), as ψ(16) ≈ 2.7 would
// otherwise turn it into an error of several ulps.
function gamma(x: number): number {
  let product = 1;
  let n = 0;
  for (; x + n < 16; n++) product *= x + n;
  const z = x + n;
  const e = x - (z - n);
  const half = Math.pow(z, (z - 0.5) / 2);
  return SQRT_2PI * Math.exp(stirlingTail(z) + digamma(z) * e) *
    Math.exp(-z) * half * half / product;
}

// ψ(z) for z ≥ 16, to the accuracy the rounding correction above needs.
function digamma(z: number): number {
  return Math.log(z) - 1 / (2 * z) - 1 / (12 * z * z);
}

// ln Γ(x) for x > 0.
function logGamma(x: number): number {
  let logProduct = 0;
  let n = 0;
  for (; x + n < 16; n++) logProduct += Math.log(x + n);
  const z = x + n;
  const e = x - (z - n);
  return (z - 0.5) * Math.log(z) - z + HALF_LOG_2PI + stirlingTail(z) +
    digamma(z) * e - logProduct;
}
