// npm run build: bundles and the guest OS (installing what the build needs first).
import { prepare } from "./lib.mjs";
prepare();
