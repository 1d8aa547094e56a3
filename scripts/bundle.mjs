// Bundle the host CLI (Node 20) and the guest agent (one file for the guest's Node 20).
import { build } from "esbuild";
import { readFile, writeFile } from "node:fs/promises";

const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
const common = { bundle: true, platform: "node", format: "esm", sourcemap: false, legalComments: "none", logLevel: "warning" };
// ESM bundles of CommonJS deps need a require(); give them one.
const banner = { js: "import { createRequire as __dinvCreateRequire } from 'node:module'; const require = __dinvCreateRequire(import.meta.url);" };

await Promise.all([
  build({
    ...common,
    entryPoints: ["host/cli/main.ts"],
    outfile: "dist/dinv.js",
    // node20: the container image runs the launcher on Debian trixie's Node 20, development machines on Node 20.
    target: "node20",
    banner: { js: `#!/usr/bin/env node\n${banner.js}` },
    define: { DINV_VERSION: JSON.stringify(pkg.version) },
  }),
  build({
    ...common,
    entryPoints: ["guest/main.ts"],
    outfile: "dist/dinv-agent.js",
    target: "node20",
    // CommonJS: the guest runs it as a plain .js file, with no package.json beside it.
    format: "cjs",
    minify: true,
    define: { AGENT_VERSION: JSON.stringify(pkg.version) },
  }),
]);
// The values the guest's shell scripts share with the TypeScript (alpine/build.sh installs them).
const constants = await build({ ...common, entryPoints: ["shared/shell-constants.ts"], write: false, format: "esm" });
const { renderShellConstants, renderContainerdToml } = await import(`data:text/javascript;base64,${Buffer.from(constants.outputFiles[0].text).toString("base64")}`);
await writeFile("dist/guest-constants.sh", renderShellConstants());
await writeFile("dist/containerd.toml", renderContainerdToml());
console.log("bundles: dist/dinv.js dist/dinv-agent.js dist/guest-constants.sh dist/containerd.toml");
