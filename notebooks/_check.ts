/**
 * Checks of executed notebooks, used by `notebooks/_run.ts` (and by `figure()` in `_plots.ts`, so
 * that a bad figure fails its own cell): no cell error, and no SVG output that would not draw.
 *
 * An `image/svg+xml` output is shown by Jupyter, VS Code and GitHub as a standalone SVG image, not as
 * HTML: an element outside SVG's vocabulary (Plot's `<figure>` and `<h2>` when a plot has a title,
 * a `<div>`, anything in the XHTML namespace) is not drawn, and neither is anything inside it. So
 * {@link svgProblems} refuses:
 *
 * - markup that is not well formed (unbalanced or mismatched tags), and a root that is not an
 *   `<svg>` in the SVG namespace;
 * - any element that is not an SVG element, and any XHTML namespace;
 * - any `NaN` or `Infinity` in an attribute (a coordinate that draws nothing);
 * - a plot panel that draws no marks. A panel is each nested `<svg>` (Plot's output inside a
 *   figure), or the root when there is none. A mark is a shape element (`path`, `circle`, `rect`,
 *   `line`, `polyline`, `polygon`, `ellipse`, `image`) that is not inside one of Plot's axis, grid,
 *   tick, frame or rule groups (`aria-label` `x-axis tick`, `y-grid`, `frame`, `rule`, …): those
 *   are drawn for any data, even none, so a panel with only them (and text) shows nothing.
 *   Rules are left out too because here they are reference lines (zero, a tolerance), never data.
 *
 * @module
 */

/** SVG 1.1 and SVG 2 element names (case-sensitive, as in SVG's own namespace). */
const SVG_ELEMENTS = new Set([
  "a",
  "animate",
  "animateMotion",
  "animateTransform",
  "circle",
  "clipPath",
  "defs",
  "desc",
  "ellipse",
  "feBlend",
  "feColorMatrix",
  "feComponentTransfer",
  "feComposite",
  "feConvolveMatrix",
  "feDiffuseLighting",
  "feDisplacementMap",
  "feDistantLight",
  "feDropShadow",
  "feFlood",
  "feFuncA",
  "feFuncB",
  "feFuncG",
  "feFuncR",
  "feGaussianBlur",
  "feImage",
  "feMerge",
  "feMergeNode",
  "feMorphology",
  "feOffset",
  "fePointLight",
  "feSpecularLighting",
  "feSpotLight",
  "feTile",
  "feTurbulence",
  "filter",
  "g",
  "image",
  "line",
  "linearGradient",
  "marker",
  "mask",
  "metadata",
  "mpath",
  "path",
  "pattern",
  "polygon",
  "polyline",
  "radialGradient",
  "rect",
  "set",
  "stop",
  "style",
  "svg",
  "switch",
  "symbol",
  "text",
  "textPath",
  "title",
  "tspan",
  "use",
  "view",
]);

/** Shape elements: what a mark draws. */
const SHAPES = new Set([
  "path",
  "circle",
  "rect",
  "line",
  "polyline",
  "polygon",
  "ellipse",
  "image",
]);

/** Plot's `aria-label`s of groups that are drawn whatever the data: axes, grids, ticks, frames, rules. */
const SCAFFOLD = /(^|[\s-])(axis|grid|tick|frame|rule)([\s-]|$)/;

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Why an `image/svg+xml` output would not draw what it claims; empty if nothing is wrong.
 *
 * @example
 * ```ts ignore
 * svgProblems('<svg xmlns="http://www.w3.org/2000/svg"><figure><h2>t</h2></figure></svg>');
 * // ["<figure> is not an SVG element (HTML is not drawn in an SVG image)", …]
 * ```
 */
export function svgProblems(svg: string): string[] {
  const problems = new Set<string>();
  if (/http:\/\/www\.w3\.org\/1999\/xhtml/.test(svg)) {
    problems.add(
      "it uses the XHTML namespace (HTML is not drawn in an SVG image)",
    );
  }
  // Comments, CDATA, processing instructions and doctypes hold no elements.
  const text = svg.replace(
    /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>/g,
    "",
  );
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;
  interface Open {
    name: string;
    scaffold: boolean;
    panel: Panel | null;
  }
  interface Panel {
    marks: number;
    nested: boolean;
  }
  const stack: Open[] = [];
  const panels: Panel[] = [];
  let root: Panel | null = null;
  let rootSeen = false;
  for (const match of text.matchAll(tag)) {
    const [, closing, name, attributes, selfClosing] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (closing) {
      const open = stack.pop();
      if (open?.name !== name) {
        problems.add(
          `</${name}> closes ${
            open ? `<${open.name}>` : "nothing"
          }: the markup is not well formed`,
        );
        return [...problems];
      }
      continue;
    }
    if (stack.length === 0) {
      if (rootSeen) problems.add(`<${name}> is a second root element`);
      rootSeen = true;
      if (name !== "svg") {
        problems.add(`the root element is <${name}>, not <svg>`);
      }
      const xmlns = /\sxmlns\s*=\s*["']([^"']*)["']/.exec(attributes!)?.[1];
      if (xmlns !== SVG_NS) {
        problems.add(`the root <svg> does not declare xmlns="${SVG_NS}"`);
      }
    }
    if (!SVG_ELEMENTS.has(name!)) {
      problems.add(
        `<${name}> is not an SVG element (HTML is not drawn in an SVG image)`,
      );
    }
    const bad = /\s([\w:-]+)\s*=\s*["'][^"']*(NaN|Infinity)/.exec(
      attributes!,
    );
    if (bad) problems.add(`<${name}> has ${bad[2]} in its ${bad[1]} attribute`);
    const label = /\saria-label\s*=\s*["']([^"']*)["']/.exec(attributes!)?.[1];
    const parent = stack.at(-1);
    const scaffold = (parent?.scaffold ?? false) ||
      (label !== undefined && SCAFFOLD.test(label));
    let panel = parent?.panel ?? null;
    if (name === "svg") {
      panel = { marks: 0, nested: parent !== undefined };
      panels.push(panel);
      if (parent === undefined) root = panel;
    }
    // The background (a rect covering the whole image) is not a mark.
    const background = name === "rect" &&
      /\swidth\s*=\s*["']100%/.test(attributes!);
    if (SHAPES.has(name!) && !scaffold && !background && panel) panel.marks++;
    if (!selfClosing) stack.push({ name: name!, scaffold, panel });
  }
  if (!rootSeen) problems.add("it holds no element");
  if (stack.length > 0) {
    problems.add(
      `<${stack.at(-1)!.name}> is never closed: the markup is not well formed`,
    );
  }
  const nested = panels.filter((p) => p.nested);
  const checked = nested.length > 0 ? nested : root ? [root] : [];
  const blank = checked.filter((p) => p.marks === 0).length;
  if (blank > 0) {
    problems.add(
      nested.length > 0
        ? `${blank} of its ${nested.length} plot panels draw no marks (only axes, grids, rules or text)`
        : "it draws no marks (only axes, grids, rules or text)",
    );
  }
  return [...problems];
}

/** A code cell's outputs, as nbformat stores them. */
interface Output {
  output_type: string;
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}

/**
 * Every problem of an executed notebook: a cell that raised an error, and an SVG output with
 * {@link svgProblems}; each line names the cell by its execution count (`In[n]`) and position.
 */
export function notebookProblems(notebook: {
  cells: {
    cell_type: string;
    execution_count?: number | null;
    outputs?: Output[];
  }[];
}): string[] {
  const problems: string[] = [];
  notebook.cells.forEach((cell, i) => {
    const where = `cell ${i + 1} (In[${cell.execution_count ?? " "}])`;
    for (const output of cell.outputs ?? []) {
      if (output.output_type === "error") {
        problems.push(`${where}: ${output.ename}: ${output.evalue}`);
      }
      const svg = output.data?.["image/svg+xml"];
      if (svg !== undefined) {
        const source = Array.isArray(svg) ? svg.join("") : svg;
        for (const problem of svgProblems(source)) {
          problems.push(`${where}: SVG output: ${problem}`);
        }
      }
    }
  });
  return problems;
}
