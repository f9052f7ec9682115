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
  return `let x = t1[at(1u, i)];
  let m0 = t2[at(2u, i)];
  ${updateBody(order, 3, withNoise ? order + 2 : null)}
  t0[at(0u, i)] = r;`;
}

/** How {@link convertUpdateBody} computes m0 (see ModelOutputConversion in lib/kernels.ts). */
export type ConversionForm = "copy" | "sample-first" | "model-first";

/**
 * Model-output conversion and the multistep update in one pass (operands out, converted, x,
 * model output, m1, m2, then noise when `withNoise`): m0 is computed as {@link axpbyDivBody}
 * (or {@link copyBody}) computes it, stored into `converted`, and used by the update as
 * {@link multistepBody} uses it, so every element rounds as the two separate kernels round it.
 * The conversion's a, b, d sit in coef 9, 10, 11. Every operand is read before `out` is
 * written, so `out` may alias an input element for element.
 */
export function convertUpdateBody(
  form: ConversionForm,
  order: 1 | 2 | 3,
  withNoise: boolean,
): string {
  const x = "t2[at(2u, i)]";
  const y = "t3[at(3u, i)]";
  const m0 = form === "copy"
    ? y
    : `(${
      form === "sample-first"
        ? `mul(coef(9u), x) + mul(coef(10u), ${y})`
        : `mul(coef(9u), ${y}) + mul(coef(10u), x)`
    }) / coef(11u)`;
  return `let x = ${x};
  let m0 = ${m0};
  ${updateBody(order, 4, withNoise ? order + 3 : null)}
  t1[at(1u, i)] = m0;
  t0[at(0u, i)] = r;`;
}

/**
 * The multistep update from `x` and `m0` (already in registers) into `var r`: m1 and m2 are
 * operands `history` and `history + 1`, the noise operand `noise` (or none).
 */
export function updateBody(
  order: 1 | 2 | 3,
  history: number,
  noise: number | null,
): string {
  const m = (k: number) => `t${history + k}[at(${history + k}u, i)]`;
  let body = /* wgsl */ `let base = mul(coef(0u), x) + mul(coef(1u), m0);`;
  if (order === 1) {
    body += /* wgsl */ `
  var r = base;`;
  } else if (order === 2) {
    body += /* wgsl */ `
  let d1 = mul(coef(5u), m0 - ${m(0)});
  var r = base + mul(coef(2u), d1);`;
  } else {
    body += /* wgsl */ `
  let m1 = ${m(0)};
  let d10 = mul(coef(5u), m0 - m1);
  let d11 = mul(coef(6u), m1 - ${m(1)});
  let diff = sub(d10, d11);
  let d1 = d10 + mul(coef(7u), diff);
  let d2 = mul(coef(8u), diff);
  var r = (base + mul(coef(2u), d1)) + mul(coef(3u), d2);`;
  }
  if (noise !== null) {
    body += `
  r = r + mul(coef(4u), t${noise}[at(${noise}u, i)]);`;
  }
  return body;
}
