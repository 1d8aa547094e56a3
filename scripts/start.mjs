// npm start: install and build whatever is missing, then `dinv run` in the foreground.
// Signals reach the launcher (same process group), which stops the guest cleanly.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { prepare, ROOT } from "./lib.mjs";

prepare();
const child = spawn(process.execPath, [join(ROOT, "dist/dinv.js"), "run"], { stdio: "inherit" });
// The terminal sends Ctrl-C to the whole group; the launcher handles it. Don't die first.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
