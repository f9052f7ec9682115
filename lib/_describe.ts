// How error messages show the values they quote.

/** A value's type for a message: `null`, a primitive as written, or an object's class name. */
export function describe(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return (value as object).constructor?.name ?? "object";
}

/** A config value for a message: strings quoted, arrays by length, other objects unnamed. */
export function show(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "object" && value !== null) return "an object";
  return String(value);
}
