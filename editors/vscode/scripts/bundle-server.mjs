// Copies the tensorlens binary into server/ so the .vsix carries it. Takes TENSORLENS_BINARY, else
// the repository's release build; fails with the command to run when there is none.
import { copyFileSync, chmodSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = process.env.TENSORLENS_BINARY ?? resolve(here, "../../../target/release/tensorlens");
if (!existsSync(source)) {
  console.error(`no tensorlens binary at ${source}: run \`cargo build --release\` first, or set TENSORLENS_BINARY`);
  process.exit(1);
}
const target = join(here, "..", "server", "tensorlens");
mkdirSync(dirname(target), { recursive: true });
copyFileSync(source, target);
chmodSync(target, 0o755);
console.log(`bundled ${source}`);
