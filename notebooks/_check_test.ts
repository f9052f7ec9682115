// The notebook runner's output checks (_check.ts) on hand-written SVGs: the blank PSNR figure of
// inversion.ipynb (Plot's title wraps its SVG in an HTML <figure>), panels without marks, broken
// markup; and a figure as _plots.ts builds it passes.
import assert from "node:assert/strict";
import { notebookProblems, svgProblems } from "./_check.ts";

const NS = 'xmlns="http://www.w3.org/2000/svg"';
const axis =
  '<g aria-label="x-axis tick"><path d="M0,0L0,6"/></g><g aria-label="y-grid"><line x1="0" x2="9"/></g>';
const dots = '<g aria-label="dot"><circle cx="1" cy="2" r="3"/></g>';

Deno.test("svgProblems() passes a figure of Plot panels with marks", () => {
  const svg =
    `<svg ${NS}><rect width="100%" height="100%" fill="white"/><text>t</text>` +
    `<svg x="0">${axis}${dots}</svg><svg x="100">${axis}<g aria-label="line"><path d="M0,0L1,1"/></g></svg></svg>`;
  assert.deepEqual(svgProblems(svg), []);
});

Deno.test("svgProblems() refuses HTML inside an SVG (Plot's titled <figure>)", () => {
  const svg = `<svg ${NS}><figure x="0" y="60"><h2>Karras sigmas</h2>` +
    `<svg ${NS}>${axis}${dots}</svg></figure></svg>`;
  const problems = svgProblems(svg);
  assert.ok(
    problems.some((p) => p.startsWith("<figure> is not an SVG element")),
  );
  assert.ok(problems.some((p) => p.startsWith("<h2> is not an SVG element")));
  assert.ok(
    svgProblems(
      `<svg ${NS}><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>${dots}</svg>`,
    ).some((p) => p.includes("XHTML namespace")),
  );
});

Deno.test("svgProblems() refuses panels that draw only axes, grids, rules and text", () => {
  const blank =
    `<svg>${axis}<g aria-label="rule"><line y1="3" y2="3"/></g><g aria-label="text"><text>0</text></g></svg>`;
  assert.deepEqual(svgProblems(`<svg ${NS}>${blank}<svg>${dots}</svg></svg>`), [
    "1 of its 2 plot panels draw no marks (only axes, grids, rules or text)",
  ]);
  assert.deepEqual(
    svgProblems(`<svg ${NS}>${axis}<g aria-label="line"></g></svg>`),
    [
      "it draws no marks (only axes, grids, rules or text)",
    ],
  );
});

Deno.test("svgProblems() refuses broken markup, a missing namespace and NaN coordinates", () => {
  assert.ok(
    svgProblems(`<svg ${NS}><g>${dots}</svg>`)[0]!.includes("not well formed"),
  );
  assert.ok(svgProblems(`<svg>${dots}</svg>`)[0]!.includes("xmlns"));
  assert.deepEqual(
    svgProblems(
      `<svg ${NS}><g aria-label="line"><path d="M0,NaNL1,2"/></g></svg>`,
    ),
    ["<path> has NaN in its d attribute"],
  );
});

Deno.test("notebookProblems() names the cell of an error and of a bad SVG", () => {
  const problems = notebookProblems({
    cells: [
      { cell_type: "markdown" },
      {
        cell_type: "code",
        execution_count: 3,
        outputs: [{ output_type: "error", ename: "RangeError", evalue: "bad" }],
      },
      {
        cell_type: "code",
        execution_count: 4,
        outputs: [{
          output_type: "display_data",
          data: { "image/svg+xml": [`<svg ${NS}>`, `${axis}</svg>`] },
        }],
      },
    ],
  });
  assert.deepEqual(problems, [
    "cell 2 (In[3]): RangeError: bad",
    "cell 3 (In[4]): SVG output: it draws no marks (only axes, grids, rules or text)",
  ]);
});
