/**
 * The helpers of `schedule.ipynb`: each family's `scheduleTable()` as tagged rows, the six panels
 * against the step index or against t, and a one-line-per-family summary.
 *
 * @module
 */
import type { ScheduleRow } from "../lib/multistep_scheduler.ts";
import { DPMSolverMultistepInverseScheduler } from "../lib/multistep_inverse.ts";
import { logAxis, type Panel, Plot, showTable } from "./_plots.ts";

/** One family: a label, a config and a step count. */
export interface Family {
  label: string;
  config: Record<string, unknown>;
  steps: number;
}

/** A schedule row tagged with its family, and whether it is the final-sigma row. */
export type Row = ScheduleRow & { family: string; last: boolean };

/** The schedule of each family as flat rows tagged with the family's label. */
export function schedules(families: Family[]): Row[] {
  return families.flatMap(({ label, config, steps }) => {
    const scheduler = new DPMSolverMultistepInverseScheduler(config);
    scheduler.setTimesteps(steps);
    const table = scheduler.scheduleTable();
    return table.map((row, i) => ({
      ...row,
      family: label,
      last: i === table.length - 1,
    }));
  });
}

/** The labels of the families in `rows`, in order: a figure's legend. */
export function familiesOf(rows: Row[]): string[] {
  return [...new Set(rows.map((r) => r.family))];
}

const quantities: {
  y: keyof ScheduleRow;
  label: string;
  log?: boolean;
  steps?: boolean;
}[] = [
  { y: "sigma", label: "σ (dimensionless, log scale)", log: true },
  { y: "lambda", label: "λ = log α_t − log σ_t (nats)" },
  { y: "h", label: "step size h = λ(next) − λ (nats)", steps: true },
  { y: "alphaT", label: "α_t, signal scale (dimensionless)" },
  { y: "sigmaT", label: "σ_t, noise scale (dimensionless)" },
];

/** Six panels against the step index: t, σ, λ, h, α_t, σ_t. */
export function againstStep(rows: Row[]): Panel[] {
  const x = { label: "step index (last point: the final sigma)", grid: true };
  const line = (data: Row[], y: string) => [
    Plot.line(data, { x: "step", y, stroke: "family", strokeWidth: 1.5 }),
    Plot.dot(data, { x: "step", y, fill: "family", r: 2 }),
  ];
  return [
    {
      x,
      y: { label: "timestep t (training steps)", grid: true },
      marks: line(rows.filter((r) => r.t !== null), "t"),
    },
    ...quantities.map(({ y, label, log, steps }) => {
      const data = steps ? rows.filter((r) => !r.last) : rows;
      return {
        x,
        y: log
          ? logAxis(label, data.map((r) => r[y] as number))
          : { label, grid: true },
        marks: [...(steps ? [Plot.ruleY([0])] : []), ...line(data, y)],
      };
    }),
  ];
}

/** Six panels against the timestep t: σ, λ, h, α_t, σ_t and the gap Δt to the next timestep. */
export function againstT(rows: Row[]): Panel[] {
  const x = {
    label: "timestep t (training steps)",
    grid: true,
    domain: [0, 1000],
    ticks: [0, 200, 400, 600, 800, 1000],
  };
  const withT = rows.filter((r) => r.t !== null);
  const line = (data: Row[], y: string | ((r: Row) => number)) => [
    Plot.line(data, { x: "t", y, stroke: "family", strokeWidth: 1.5 }),
    Plot.dot(data, { x: "t", y, fill: "family", r: 2 }),
  ];
  const next = new Map(withT.map((r) => [r, rows[rows.indexOf(r) + 1]]));
  const gaps = withT.filter((r) => next.get(r)?.t != null);
  return [
    ...quantities.map(({ y, label, log, steps }) => ({
      x,
      y: log
        ? logAxis(label, withT.map((r) => r[y] as number))
        : { label, grid: true },
      marks: [...(steps ? [Plot.ruleY([0])] : []), ...line(withT, y)],
    })),
    {
      x,
      y: { label: "Δt to the next timestep (training steps)", grid: true },
      marks: [
        Plot.ruleY([0]),
        ...line(gaps, (r: Row) => next.get(r)!.t! - r.t!),
      ],
    },
  ];
}

/** A table of each family's range: where it starts and ends, and its largest and last steps. */
export function summary(rows: Row[]): Promise<void> {
  const table = familiesOf(rows).map((family) => {
    const f = rows.filter((r) => r.family === family);
    const ts = f.filter((r) => r.t !== null).map((r) => r.t!);
    const hs = f.slice(0, -1).map((r) => r.h);
    const [first, final] = [f[0]!, f.at(-1)!];
    return [
      family,
      String(ts.length),
      `${ts[0]}–${ts.at(-1)}`,
      first.sigma.toPrecision(3),
      final.sigma.toPrecision(3),
      first.lambda.toFixed(2),
      final.lambda.toFixed(2),
      Math.max(...hs.map(Math.abs)).toFixed(2),
      hs.at(-1)!.toFixed(2),
    ];
  });
  return showTable([
    "family",
    "steps",
    "t range",
    "σ first",
    "σ final",
    "λ first",
    "λ final",
    "largest |h|",
    "last h",
  ], table);
}
