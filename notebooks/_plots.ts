/**
 * Display helpers shared by the notebooks: MIME displays, tables, and standalone SVG figures built
 * from Observable Plot panels.
 *
 * A figure is one `image/svg+xml` output: a title, an optional legend, and Plot panels laid out in a
 * grid, each panel Plot's own `<svg>` nested in ours. Plot's `title`, `subtitle` and `caption`
 * options wrap its SVG in an HTML `<figure>`, which an SVG image does not draw, so a panel's `title`
 * is drawn here as SVG text instead, and every figure passes `svgProblems` (`_check.ts`) before it
 * is shown: a figure with HTML in it, or a panel without marks, fails its cell.
 *
 * @module
 */
// Full specifiers, not deno.json's import map: the notebooks' dependencies stay theirs, and load
// however this module is reached.
// deno-lint-ignore no-import-prefix
import * as Plot from "npm:@observablehq/plot@0.6.17";
// deno-lint-ignore no-import-prefix
import { parseHTML } from "npm:linkedom@0.18.15";
import { svgProblems } from "./_check.ts";

export { Plot };

// linkedom stands in for the browser's document: Plot builds its SVG in it and we serialise that.
const { document } = parseHTML(
  "<!DOCTYPE html><html><body></body></html>",
) as unknown as { document: Plot.PlotOptions["document"] };

/** The parts of the DOM element Plot returns that we use (Deno has no DOM types). */
interface PlotElement {
  tagName: string;
  querySelector(selector: string): { remove(): void } | null;
  removeAttribute(name: string): void;
  setAttribute(name: string, value: string): void;
  outerHTML: string;
}

/**
 * Displays a MIME bundle. Deno 2.9's kernel can publish a display after the cell's "idle" status,
 * and nbconvert then drops it; a short pause lets it go out first (and `notebooks/_run.ts` re-runs a
 * notebook in which a cell came back without output).
 */
export async function show(bundle: Record<string, string>): Promise<void> {
  await Deno.jupyter.display(bundle, { raw: true });
  await new Promise((resolve) => setTimeout(resolve, 25));
}

/** Displays plain text. */
export function showText(text: string): Promise<void> {
  return show({ "text/plain": text });
}

/** Displays PNG bytes inline. */
export function showPng(png: Uint8Array): Promise<void> {
  let binary = "";
  for (let i = 0; i < png.length; i += 0x8000) {
    binary += String.fromCharCode(...png.subarray(i, i + 0x8000));
  }
  return show({ "image/png": btoa(binary) });
}

const escapeHtml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * Displays a table as HTML (with a plain-text copy). Cells are text, escaped here, so `|` and `<`
 * need no care; the first `left` columns are left-aligned, the others right-aligned (numbers).
 */
export function showTable(
  columns: string[],
  rows: string[][],
  { left = 1, caption }: { left?: number; caption?: string } = {},
): Promise<void> {
  const align = (i: number) => `text-align:${i < left ? "left" : "right"}`;
  const html = `<table>${
    caption === undefined ? "" : `<caption>${escapeHtml(caption)}</caption>`
  }<thead><tr>${
    columns.map((c, i) => `<th style="${align(i)}">${escapeHtml(c)}</th>`)
      .join("")
  }</tr></thead><tbody>${
    rows.map((r) =>
      `<tr>${
        r.map((v, i) => `<td style="${align(i)}">${escapeHtml(v)}</td>`).join(
          "",
        )
      }</tr>`
    ).join("")
  }</tbody></table>`;
  const widths = columns.map((c, i) =>
    Math.max(c.length, ...rows.map((r) => r[i]!.length))
  );
  const text = [columns, ...rows].map((r) =>
    r.map((v, i) => i < left ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))
      .join("  ").trimEnd()
  );
  return show({
    "text/html": html,
    "text/plain": (caption === undefined ? "" : `${caption}\n\n`) +
      text.join("\n"),
  });
}

/** Colours of the series, in legend order (Observable's "observable10" scheme). */
export const PALETTE = [
  "#4269d0",
  "#efb118",
  "#ff725c",
  "#6cc5b0",
  "#3ca951",
  "#ff8ab7",
  "#a463f2",
  "#97bbf5",
  "#9c6b4e",
  "#9498a0",
];

/** A legend entry: a series label, drawn as a line (dashed if asked), a dot or a square of its colour. */
export type LegendEntry = string | {
  label: string;
  dashed?: boolean;
  dot?: boolean;
  square?: boolean;
  color?: string;
};

/** A panel: Plot's options, with a `title` drawn as SVG text above the plot. */
export type Panel = Omit<Plot.PlotOptions, "title" | "subtitle" | "caption"> & {
  title?: string;
};

/** What {@link figure} draws. */
export interface FigureOptions {
  /** The figure's title, in bold at the top. */
  title: string;
  /** Series labels: the colour scale's domain, in {@link PALETTE}'s order, drawn as a legend. */
  legend?: LegendEntry[];
  panels: Panel[];
  /** Panels per row (default: all of them in one row, at most 3). */
  columns?: number;
  /** Each panel's width and height in pixels. */
  size?: [number, number];
}

const escapeXml = (s: string) => escapeHtml(s).replaceAll('"', "&quot;");

/**
 * Builds the standalone SVG of a figure; throws if it would not draw (see `_check.ts`).
 *
 * @example
 * ```ts ignore
 * const svg = figureSvg({ title: "y = x²", panels: [{ marks: [Plot.line([[0, 0], [1, 1], [2, 4]])] }] });
 * ```
 */
export function figureSvg(
  { title, legend = [], panels, columns, size = [320, 240] }: FigureOptions,
): string {
  const [width, height] = size;
  const gap = 16;
  const cols = columns ?? Math.min(panels.length, 3);
  const entries = legend.map((e) => typeof e === "string" ? { label: e } : e);
  const colors = entries.map((e, i) => e.color ?? PALETTE[i % PALETTE.length]!);
  const color = { domain: entries.map((e) => e.label), range: colors };
  const totalWidth = cols * width + (cols - 1) * gap;
  let x = 0;
  let y = 44;
  const swatches: string[] = [];
  for (const [i, entry] of entries.entries()) {
    const w = 40 + 7 * entry.label.length;
    if (x > 0 && x + w > totalWidth) [x, y] = [0, y + 18];
    swatches.push(
      (entry.dot
        ? `<circle cx="${x + 10}" cy="${y}" r="4" fill="${colors[i]}"/>`
        : entry.square
        ? `<rect x="${x + 4}" y="${y - 6}" width="12" height="12" fill="${
          colors[i]
        }"/>`
        : `<line x1="${x}" x2="${x + 20}" y1="${y}" y2="${y}" stroke="${
          colors[i]
        }" stroke-width="3"${
          entry.dashed ? ' stroke-dasharray="5,3"' : ""
        }/>`) +
        `<text x="${x + 25}" y="${y + 4}" font-size="12">${
          escapeXml(entry.label)
        }</text>`,
    );
    x += w;
  }
  const top = entries.length > 0 ? y + 16 : 30;
  const rows = Math.ceil(panels.length / cols);
  // Panel titles get a line of their own above their panels.
  const titled = panels.some((p) => p.title !== undefined) ? 20 : 0;
  const svgs = panels.map(({ title: panelTitle, ...options }, i) => {
    const [px, py] = [
      (i % cols) * (width + gap),
      top + titled + Math.floor(i / cols) * (height + gap + titled),
    ];
    const plot = Plot.plot({
      document,
      width,
      height,
      marginLeft: 56,
      ...(entries.length > 0 ? { color } : {}),
      ...options,
    }) as unknown as PlotElement;
    if (plot.tagName.toLowerCase() !== "svg") {
      throw new TypeError(
        `Cannot draw panel ${
          i + 1
        } of '${title}': Plot returned a <${plot.tagName.toLowerCase()}>, not an <svg> (a title, subtitle, caption or legend option makes it HTML)`,
      );
    }
    plot.querySelector("style")?.remove();
    plot.removeAttribute("class");
    plot.setAttribute("x", String(px));
    plot.setAttribute("y", String(py));
    const heading = panelTitle === undefined
      ? ""
      : `<text x="${px}" y="${py - 4}" font-size="13" font-weight="bold">${
        escapeXml(panelTitle)
      }</text>`;
    return plot.outerHTML + heading;
  });
  const totalHeight = top + rows * (height + titled) + (rows - 1) * gap;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${totalWidth}" height="${totalHeight}" ` +
    `viewBox="0 0 ${totalWidth} ${totalHeight}" font-family="system-ui, sans-serif" font-size="10">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="0" y="18" font-size="15" font-weight="bold">${
      escapeXml(title)
    }</text>${swatches.join("")}${svgs.join("")}</svg>`;
  const problems = svgProblems(svg);
  if (problems.length > 0) {
    throw new Error(
      `Cannot show figure '${title}' as it would not draw: ${
        problems.join("; ")
      }`,
    );
  }
  return svg;
}

/** Displays a figure ({@link figureSvg}). */
export function figure(options: FigureOptions): Promise<void> {
  return show({ "image/svg+xml": figureSvg(options) });
}

/** A log axis with a labelled tick and a grid line at each power of ten the values span. */
export function logAxis(
  label: string,
  values: number[],
  format: (d: number) => string = (d) =>
    d >= 1e-3 && d <= 1e5 ? String(d) : d.toExponential(0),
): Plot.ScaleOptions {
  const finite = values.filter((v) => v > 0 && Number.isFinite(v));
  const [lo, hi] = [Math.min(...finite), Math.max(...finite)].map(Math.log10);
  const ticks = Array.from(
    { length: Math.ceil(hi!) - Math.floor(lo!) + 1 },
    (_, i) => 10 ** (Math.floor(lo!) + i),
  );
  return {
    type: "log",
    label,
    grid: true,
    domain: [ticks[0]!, ticks.at(-1)!],
    ticks,
    tickFormat: format,
  };
}

/** max |a − b| over two arrays of the same length. */
export function maxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The root mean square of a − b over two arrays of the same length. */
export function rmsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s / a.length);
}
