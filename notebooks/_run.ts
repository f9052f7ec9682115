/**
 * `deno task notebooks`: executes every notebook in this folder in place on Deno's Jupyter kernel,
 * headlessly, keeping the outputs in the files, and exits non-zero on the first notebook with a
 * cell error or an SVG output that would not draw (HTML inside it, a panel without marks: see
 * `_check.ts`). `deno task notebooks name.ipynb …` runs only the notebooks named. Needs
 * Jupyter's nbconvert (Debian: `jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel`)
 * and the kernel (`deno jupyter --install`).
 *
 * @module
 */
import { notebookProblems } from "./_check.ts";

const dir = new URL(".", import.meta.url);
const all = [...Deno.readDirSync(dir)]
  .filter((entry) => entry.isFile && entry.name.endsWith(".ipynb"))
  .map((entry) => entry.name)
  .sort();
const notebooks = Deno.args.length === 0
  ? all
  : Deno.args.map((arg) => arg.replace(/^.*\//, ""));
const unknown = notebooks.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(
    `Cannot run ${unknown.join(", ")}: the notebooks are ${all.join(", ")}`,
  );
  Deno.exit(2);
}

// Deno 2.9's `deno fmt --check` reports a notebook as unformatted, with an empty diff, when a cell's
// source does not end with a newline, yet Jupyter and `deno fmt` itself save cells without one: add
// it back before executing, so the executed notebooks stay fmt-clean. nbconvert then rewrites each
// file in nbformat's own layout.
for (const name of notebooks) {
  const path = new URL(name, dir);
  const notebook = JSON.parse(await Deno.readTextFile(path));
  let changed = false;
  for (const cell of notebook.cells as { source: string | string[] }[]) {
    const lines = typeof cell.source === "string"
      ? cell.source.split(/(?<=\n)/)
      : cell.source;
    if (lines.length > 0 && !lines.at(-1)!.endsWith("\n")) {
      lines[lines.length - 1] += "\n";
      cell.source = lines;
      changed = true;
    }
  }
  if (changed) {
    await Deno.writeTextFile(path, JSON.stringify(notebook, null, 1) + "\n");
  }
}

/** Executes one notebook in place; false if a cell threw (nbconvert has then printed the error). */
async function execute(name: string): Promise<boolean> {
  const { success } = await new Deno.Command("jupyter", {
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    args: [
      "nbconvert",
      "--to=notebook",
      "--execute",
      "--inplace",
      "--ExecutePreprocessor.kernel_name=deno",
      // A cell of inversion.ipynb runs the digits model for about a minute alone, several on a
      // loaded machine.
      "--ExecutePreprocessor.timeout=900",
      // No per-cell timestamps, so a re-run leaves the files unchanged.
      "--ExecutePreprocessor.record_timing=False",
      name,
    ],
    cwd: dir,
  }).spawn().status;
  return success;
}

/** The code cells (1-based among all cells) that came back without any output. */
async function silentCells(name: string): Promise<number[]> {
  const notebook = JSON.parse(await Deno.readTextFile(new URL(name, dir)));
  return (notebook.cells as { cell_type: string; outputs?: unknown[] }[])
    .flatMap((cell, i) =>
      cell.cell_type === "code" && cell.outputs?.length === 0 ? [i + 1] : []
    );
}

// Every code cell of these notebooks displays something. Deno 2.9's kernel sometimes publishes a
// display after the cell's "idle" status, which nbconvert drops, so a cell without output means a
// lost display: run the notebook again.
const ATTEMPTS = 3;
for (const name of notebooks) {
  for (let attempt = 1;; attempt++) {
    if (!(await execute(name))) Deno.exit(1);
    const problems = notebookProblems(
      JSON.parse(await Deno.readTextFile(new URL(name, dir))),
    );
    if (problems.length > 0) {
      console.error(`${name}:\n  ${problems.join("\n  ")}`);
      Deno.exit(1);
    }
    const silent = await silentCells(name);
    if (silent.length === 0) break;
    const message = `${name}: cells ${
      silent.join(", ")
    } came back without output`;
    if (attempt === ATTEMPTS) {
      console.error(
        `${message} after ${ATTEMPTS} runs; every code cell must display something`,
      );
      Deno.exit(1);
    }
    console.error(
      `${message} (a display lost by the kernel); running it again`,
    );
  }
}
