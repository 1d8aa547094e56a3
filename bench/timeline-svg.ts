// The boot phases as a picture (in the spirit of systemd-analyze plot): one bar per boot shape,
// segments between the agent's own timestamps, the agent's hello as a tick. Pure.

export interface TimelineRow {
  label: string;
  /** ms since QEMU start: kernel, init, hello, disksMounted, dockerdStarted, ready (a warm start: restored, hello, ready) */
  phases: Record<string, number>;
}

/** A row's segments: a cold boot's, or (warm) a restored VM's. */
const SEGMENTS: { from: string; to: string; name: string; colour: string; warm?: true }[] = [
  { from: "start", to: "kernel", name: "QEMU and firmware", colour: "#9aa5b1" },
  { from: "kernel", to: "init", name: "kernel and initramfs", colour: "#4c78a8" },
  { from: "init", to: "disksMounted", name: "init (cgroups, modules, network, docker disk)", colour: "#72b7b2" },
  { from: "disksMounted", to: "dockerdStarted", name: "containerd ready, dockerd exec", colour: "#54a24b" },
  { from: "dockerdStarted", to: "ready", name: "dockerd's own start", colour: "#eeca3b" },
  // A warm start's row: no kernel or init runs.
  { from: "start", to: "restored", name: "warm start: QEMU start, the saved VM loaded and its digest checked", colour: "#b279a2", warm: true },
  { from: "restored", to: "hello", name: "warm start: the guest renewed (entropy, clock, ids)", colour: "#ff9da6", warm: true },
  { from: "hello", to: "ready", name: "warm start: the docker API forwarded", colour: "#9d755d", warm: true },
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function timelineSvg(rows: TimelineRow[], caption: string): string {
  const width = 900;
  const left = 170;
  const barH = 26;
  const top = 40;
  const legendTop = top + rows.length * (barH + 18) + 10;
  const height = legendTop + SEGMENTS.length * 18 + 30;
  const maxMs = Math.max(...rows.map((r) => r.phases.ready ?? 0), 1);
  const scale = (ms: number) => left + (ms / maxMs) * (width - left - 60);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(caption)}</text>`,
  ];
  for (let s = 0; s <= maxMs; s += 2000) {
    const x = scale(s);
    out.push(`<line x1="${x.toFixed(1)}" y1="${top - 8}" x2="${x.toFixed(1)}" y2="${legendTop - 14}" stroke="#ddd"/>`, `<text x="${x.toFixed(1)}" y="${top - 12}" text-anchor="middle" fill="#666">${s / 1000} s</text>`);
  }
  rows.forEach((row, i) => {
    const y = top + i * (barH + 18);
    const at = (k: string) => (k === "start" ? 0 : row.phases[k]);
    out.push(`<text x="${left - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(row.label)}</text>`);
    const warm = row.phases.restored !== undefined;
    for (const seg of SEGMENTS) {
      if (!!seg.warm !== warm) continue;
      const a = at(seg.from);
      const b = at(seg.to);
      if (a === undefined || b === undefined || b <= a) continue;
      out.push(`<rect x="${scale(a).toFixed(1)}" y="${y}" width="${(scale(b) - scale(a)).toFixed(1)}" height="${barH}" fill="${seg.colour}"><title>${esc(seg.name)}: ${Math.round(b - a)} ms</title></rect>`);
    }
    if (row.phases.hello !== undefined) {
      const x = scale(row.phases.hello).toFixed(1);
      out.push(`<line x1="${x}" y1="${y - 4}" x2="${x}" y2="${y + barH + 4}" stroke="#e45756" stroke-width="2"/>`, `<text x="${x}" y="${y + barH + 14}" text-anchor="middle" fill="#e45756">agent hello</text>`);
    }
    if (row.phases.ready !== undefined) out.push(`<text x="${(scale(row.phases.ready) + 4).toFixed(1)}" y="${y + barH / 2 + 4}">${(row.phases.ready / 1000).toFixed(1)} s</text>`);
  });
  SEGMENTS.forEach((seg, i) => {
    const y = legendTop + i * 18;
    out.push(`<rect x="${left}" y="${y}" width="12" height="12" fill="${seg.colour}"/>`, `<text x="${left + 18}" y="${y + 10}">${esc(seg.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
