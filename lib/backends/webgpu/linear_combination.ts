// WGSL bodies of the element-wise kernels: copy, axpbyDiv and the multistep update. Each product
// goes through `mul` (see _wgsl.ts) so that nothing is fused, and the additions follow
// backends/cpu.ts exactly, so every element rounds as on the CPU.
//
// Operands: t0 is `out`; the others follow the kernel's argument order. Coefficients sit in
// `coef(k)` in the order of MultistepCoefficients: a, b, c, d, e, k0, k1, q, k2.

/** `out = x`. */
export const copyBody = /* wgsl */ `t0[at(0u, i)] = t1[at(1u, i)];`;

/** `out = (a·x + b·y) / d`, or `out = (a·x) / d` without `y`; coef 0, 1, 2 are a, b, d. */
export function axpbyDivBody(withY: boolean): string {
  const sum = withY
    ? "mul(coef(0u), t1[at(1u, i)]) + mul(coef(1u), t2[at(2u, i)])"
    : "mul(coef(0u), t1[at(1u, i)])";
  return /* wgsl */ `let s = ${sum};
  t0[at(0u, i)] = s / coef(2u);`;
}

/**
 * One multistep update of `order` (operands out, x, m0, m1, m2, then noise when `withNoise`).
 * The formulas are MultistepCoefficients' (lib/solver.ts), applied as the CPU backend applies
 * them.
 */
export function multistepBody(order: 1 | 2 | 3, withNoise: boolean): string {
  const head = /* wgsl */ `let x = t1[at(1u, i)];
  let m0 = t2[at(2u, i)];
  let base = mul(coef(0u), x) + mul(coef(1u), m0);`;
  let update: string;
  if (order === 1) {
    update = `var r = base;`;
  } else if (order === 2) {
    update = /* wgsl */ `let d1 = mul(coef(5u), m0 - t3[at(3u, i)]);
  var r = base + mul(coef(2u), d1);`;
  } else {
    update = /* wgsl */ `let m1 = t3[at(3u, i)];
  let d10 = mul(coef(5u), m0 - m1);
  let d11 = mul(coef(6u), m1 - t4[at(4u, i)]);
  let diff = sub(d10, d11);
  let d1 = d10 + mul(coef(7u), diff);
  let d2 = mul(coef(8u), diff);
  var r = (base + mul(coef(2u), d1)) + mul(coef(3u), d2);`;
  }
  const noise = withNoise
    ? `\n  r = r + mul(coef(4u), t${order + 2}[at(${order + 2}u, i)]);`
    : "";
  return `${head}
  ${update}${noise}
  t0[at(0u, i)] = r;`;
}
