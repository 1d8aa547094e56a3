// Sizes in QEMU's syntax: a whole number with an optional K, M, G or T suffix (powers of 1024).

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * Bytes of a size string, or undefined when it is not one. `bareUnit` is the unit of a number
 * without suffix (QEMU reads `-m 512` as MiB, qemu-img reads `64` as bytes).
 */
export function parseSize(text: string, bareUnit: "" | "M" = ""): number | undefined {
  const match = /^\s*(\d+)\s*([KMGT])?(i?B)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? bareUnit).toUpperCase();
  const bytes = Number(match[1]) * UNITS[unit]!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Shortest exact rendering in QEMU's syntax: 536870912 -> "512M". */
export function formatSize(bytes: number): string {
  for (const unit of ["T", "G", "M", "K"]) {
    const scale = UNITS[unit]!;
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}
