/** `npm run schema`: writes schema/schema.graphql from the code. */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { printSchemaSdl } from "./schema.js";

void printSchemaSdl().then((sdl) => {
  const file = path.resolve(__dirname, "../../schema/schema.graphql");
  writeFileSync(file, sdl);
  console.log(`wrote ${file}`);
});
