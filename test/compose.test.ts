/**
 * Docker cannot run here, so docker-compose.yml and the Dockerfile are checked structurally: the compose
 * file is parsed (a small parser for the YAML subset it keeps to), interpolated like compose does, and the
 * service's environment is fed to the real loadConfig; the Dockerfile's steps are checked against
 * package.json, tsconfig.json and the files it copies.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { loadConfig } from "../src/config.js";

const ROOT = path.resolve(__dirname, "..");
const read = (rel: string) => readFileSync(path.join(ROOT, rel), "utf8");

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

/**
 * Parses the YAML subset the compose file uses: block mappings and sequences by indentation, one-line flow
 * sequences, plain / single- / double-quoted scalars, comments. Anything else (anchors, block scalars, flow
 * mappings, tabs) is rejected, so the file cannot drift into YAML this check would misread.
 */
export function parseYamlSubset(text: string): Yaml {
  const lines: { indent: number; text: string; lineNo: number }[] = [];
  text.split("\n").forEach((raw, i) => {
    if (/^\s*\t/.test(raw)) throw new Error(`line ${i + 1}: tab indentation`);
    const stripped = stripComment(raw).replace(/\s+$/, "");
    if (stripped.trim() === "") return;
    lines.push({ indent: stripped.length - stripped.trimStart().length, text: stripped.trim(), lineNo: i + 1 });
  });
  let pos = 0;

  function block(indent: number): Yaml {
    const first = lines[pos];
    if (first.text.startsWith("- ") || first.text === "-") {
      const seq: Yaml[] = [];
      while (pos < lines.length && lines[pos].indent === indent && (lines[pos].text.startsWith("- ") || lines[pos].text === "-")) {
        const item = lines[pos].text.slice(1).trim();
        if (item === "" || /^[^"'\[]+?:(\s|$)/.test(item)) throw new Error(`line ${lines[pos].lineNo}: only scalar list items are supported`);
        seq.push(scalar(item, lines[pos].lineNo));
        pos++;
      }
      return seq;
    }
    const map: { [key: string]: Yaml } = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const { text: t, lineNo } = lines[pos];
      const m = /^([A-Za-z0-9_.\-]+):(?:\s+(.*))?$/.exec(t);
      if (!m) throw new Error(`line ${lineNo}: expected "key: value", got ${JSON.stringify(t)}`);
      const key = m[1];
      if (key in map) throw new Error(`line ${lineNo}: duplicate key ${key}`);
      pos++;
      if (m[2] !== undefined && m[2] !== "") {
        map[key] = scalar(m[2], lineNo);
      } else if (pos < lines.length && lines[pos].indent > indent) {
        map[key] = block(lines[pos].indent);
      } else if (pos < lines.length && lines[pos].indent === indent && lines[pos].text.startsWith("- ")) {
        map[key] = block(indent); // a sequence may sit at its key's indentation
      } else {
        map[key] = null;
      }
    }
    if (pos < lines.length && lines[pos].indent > indent) throw new Error(`line ${lines[pos].lineNo}: unexpected indentation`);
    return map;
  }

  function scalar(s: string, lineNo: number): Yaml {
    if (/^[&*!|>{]/.test(s)) throw new Error(`line ${lineNo}: unsupported YAML construct ${JSON.stringify(s)}`);
    if (s.startsWith("[")) {
      if (!s.endsWith("]")) throw new Error(`line ${lineNo}: flow sequences must be on one line`);
      return splitFlow(s.slice(1, -1), lineNo).map((item) => scalar(item, lineNo));
    }
    if (s.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\.)*)"$/.exec(s);
      if (!m) throw new Error(`line ${lineNo}: bad double-quoted string`);
      return m[1].replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t", '"': '"', "\\": "\\" })[c] ?? c);
    }
    if (s.startsWith("'")) {
      const m = /^'((?:[^']|'')*)'$/.exec(s);
      if (!m) throw new Error(`line ${lineNo}: bad single-quoted string`);
      return m[1].replace(/''/g, "'");
    }
    if (s === "~" || s === "null") return null;
    return s;
  }

  function splitFlow(inner: string, lineNo: number): string[] {
    const items: string[] = [];
    let cur = "";
    let quote: string | null = null;
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (quote) {
        cur += c;
        if (c === "\\" && quote === '"') cur += inner[++i];
        else if (c === quote) quote = null;
      } else if (c === '"' || c === "'") {
        quote = c;
        cur += c;
      } else if (c === ",") {
        items.push(cur.trim());
        cur = "";
      } else if (c === "[" || c === "{") {
        throw new Error(`line ${lineNo}: nested flow collections are not supported`);
      } else cur += c;
    }
    if (quote) throw new Error(`line ${lineNo}: unterminated quote`);
    if (cur.trim() !== "" || items.length) items.push(cur.trim());
    return items;
  }

  const doc = lines.length ? block(0) : null;
  if (pos !== lines.length) throw new Error(`line ${lines[pos].lineNo}: could not parse`);
  return doc;
}

/** A "#" starts a comment at the line start or after whitespace, outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, name, op, arg, bare) => {
    if (all === "$$") return "$";
    if (bare) return env[bare] ?? "";
    const v = env[name];
    const unset = v === undefined;
    const empty = unset || v === "";
    switch (op) {
      case ":-":
        return empty ? arg : v!;
      case "-":
        return unset ? arg : v!;
      case ":?":
        if (empty) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return v!;
      case "?":
        if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return v!;
      default:
        return v ?? "";
    }
  });
}

const asMap = (v: Yaml | undefined, what: string): { [key: string]: Yaml } => {
  assert.ok(v && typeof v === "object" && !Array.isArray(v), `${what} must be a mapping`);
  return v as { [key: string]: Yaml };
};
const asList = (v: Yaml | undefined, what: string): Yaml[] => {
  assert.ok(Array.isArray(v), `${what} must be a list`);
  return v;
};
const asString = (v: Yaml | undefined, what: string): string => {
  assert.equal(typeof v, "string", `${what} must be a string`);
  return v as string;
};

/** Variables the AWS SDK reads itself (the standard credential chain and region); not config.ts's business. */
const SDK_ENV = new Set(["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]);
/** What the service must be given in compose (issue #3). */
const REQUIRED_ENV = [
  "PORT",
  "HOST",
  "TRIALGRAPH_DATA_DIR",
  "TRIALGRAPH_S3_ENDPOINT",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "TRIALGRAPH_REDIS_URL",
  "TRIALGRAPH_DATABASE_URL",
  "TRIALGRAPH_API_TOKENS",
];
const SAMPLE_ENV = { TRIALGRAPH_API_TOKENS: "ci:operator:0123456789abcdef-compose-check" };

describe("YAML subset parser", () => {
  test("parses what compose files use and matches hand-derived structures", () => {
    const doc = parseYamlSubset(
      [
        "# comment",
        "a:",
        "  b: plain value # trailing comment",
        '  c: "quoted # not a comment"',
        "  d: ['x', \"y, z\", w]",
        "  e:",
        "    - one",
        '    - "two"',
        "  f:",
        "g: 'it''s'",
        "h:",
        "- at key indent",
      ].join("\n"),
    );
    assert.deepEqual(doc, {
      a: { b: "plain value", c: "quoted # not a comment", d: ["x", "y, z", "w"], e: ["one", "two"], f: null },
      g: "it's",
      h: ["at key indent"],
    });
    for (const bad of ["a: &anchor x", "a: |\n  text", "a: {b: c}", "a:\n  - b: c", "a: 1\na: 2", "a:\n\t- x", "a: [x, [y]]"]) {
      assert.throws(() => parseYamlSubset(bad), Error, bad);
    }
  });

  test("interpolation follows compose's rules", () => {
    const env = { SET: "v", EMPTY: "" };
    assert.equal(interpolate("${SET:-d}/${EMPTY:-d}/${EMPTY-d}/${UNSET-d}/$$HOME/$SET", env), "v/d//d/$HOME/v");
    assert.throws(() => interpolate("${EMPTY:?need it}", env), /EMPTY.*need it/);
    assert.equal(interpolate("${EMPTY?need it}", env), "");
  });
});

describe("docker-compose.yml", () => {
  const compose = asMap(parseYamlSubset(read("docker-compose.yml")), "compose file");
  const services = asMap(compose.services, "services");
  const app = asMap(services.trialgraph, "services.trialgraph");
  const rawEnv = asMap(app.environment, "trialgraph environment");
  const env = (extra: Record<string, string> = SAMPLE_ENV) =>
    Object.fromEntries(Object.entries(rawEnv).map(([k, v]) => [k, interpolate(asString(v, k), extra)]));

  test("has the service, PostgreSQL, MinIO, a bucket-creating one-shot and Redis", () => {
    assert.deepEqual(Object.keys(services).sort(), ["minio", "minio-init", "postgres", "redis", "trialgraph"]);
    assert.match(asString(asMap(services.postgres, "postgres").image, "postgres image"), /^postgres:\d+/);
    const build = asMap(app.build, "trialgraph.build");
    assert.equal(build.context, ".");
    assert.equal(build.dockerfile, "Dockerfile");
    assert.ok(existsSync(path.join(ROOT, asString(build.dockerfile, "dockerfile"))));
    assert.match(asString(asMap(services.minio, "minio").image, "minio image"), /^minio\/minio:RELEASE\./);
    assert.match(asString(asMap(services["minio-init"], "minio-init").image, "mc image"), /^minio\/mc:RELEASE\./);
    assert.match(asString(asMap(services.redis, "redis").image, "redis image"), /^redis:/);
  });

  test("every env name is one src/config.ts reads or one the AWS SDK reads; the required ones are set", () => {
    const configSource = read("src/config.ts");
    for (const name of Object.keys(rawEnv)) {
      assert.ok(SDK_ENV.has(name) || configSource.includes(`"${name}"`), `${name} is neither read by src/config.ts nor an AWS SDK variable`);
    }
    for (const name of REQUIRED_ENV) assert.ok(name in rawEnv, `${name} missing from the trialgraph service`);
    assert.equal(rawEnv.HOST, "0.0.0.0");
  });

  test("the interpolated environment passes the real loadConfig and points at the compose services", () => {
    const cfg = loadConfig(env());
    assert.equal(cfg.host, "0.0.0.0");
    assert.equal(cfg.port, 4000);
    assert.equal(cfg.dataDir, "/data");
    assert.equal(cfg.region, "us-east-1");
    assert.equal(cfg.apiTokens.length, 1);
    assert.equal(cfg.allowUnauthenticated, false);
    // MinIO's keys must not switch SageMaker on (config.ts enables it when AWS keys are present).
    assert.equal(cfg.sagemakerEnabled, false);

    const s3 = new URL(cfg.s3Endpoint!);
    assert.ok(s3.hostname in services, `S3 endpoint host ${s3.hostname} is a compose service`);
    const minio = asMap(services[s3.hostname], s3.hostname);
    assert.ok(asList(minio.command, "minio command").includes("/data"));
    assert.equal(s3.port, "9000"); // MinIO's S3 API port
    const redis = new URL(cfg.redisUrl!);
    assert.ok(redis.hostname in services && redis.hostname === "redis");
    assert.equal(redis.port, "6379");

    // The database URL names the postgres service, its database and its user with their password,
    // whatever the user overrides the password to.
    const pgEnv = asMap(asMap(services.postgres, "postgres").environment, "postgres environment");
    for (const overrides of [SAMPLE_ENV, { ...SAMPLE_ENV, POSTGRES_PASSWORD: "another-password" }]) {
      const db = new URL(loadConfig(env(overrides)).databaseUrl!);
      assert.equal(db.protocol, "postgres:");
      assert.equal(db.hostname, "postgres");
      assert.ok(db.hostname in services);
      assert.equal(db.port, "5432");
      assert.equal(db.pathname, `/${interpolate(asString(pgEnv.POSTGRES_DB, "db"), overrides)}`);
      assert.equal(db.username, interpolate(asString(pgEnv.POSTGRES_USER, "user"), overrides));
      assert.equal(decodeURIComponent(db.password), interpolate(asString(pgEnv.POSTGRES_PASSWORD, "password"), overrides));
    }

    // The service signs with MinIO's root credentials, whatever the user overrides them to.
    const minioEnv = asMap(minio.environment, "minio environment");
    for (const overrides of [SAMPLE_ENV, { ...SAMPLE_ENV, MINIO_ROOT_USER: "alice", MINIO_ROOT_PASSWORD: "a-long-password" }]) {
      const e = env(overrides);
      assert.equal(e.AWS_ACCESS_KEY_ID, interpolate(asString(minioEnv.MINIO_ROOT_USER, "user"), overrides));
      assert.equal(e.AWS_SECRET_ACCESS_KEY, interpolate(asString(minioEnv.MINIO_ROOT_PASSWORD, "password"), overrides));
      assert.ok(e.AWS_SECRET_ACCESS_KEY.length >= 8, "MinIO needs a password of 8+ characters");
    }
  });

  test("bound to 0.0.0.0 the service cannot start without tokens: compose refuses, and so does loadConfig", () => {
    assert.throws(() => env({}), /TRIALGRAPH_API_TOKENS/);
    const noTokens = { ...env(), TRIALGRAPH_API_TOKENS: "" };
    assert.throws(() => loadConfig(noTokens), /TRIALGRAPH_API_TOKENS/);
  });

  test("the published port is the service's PORT and the Dockerfile's EXPOSE", () => {
    const ports = asList(app.ports, "trialgraph ports").map((p) => asString(p, "port"));
    const port = env().PORT;
    assert.ok(ports.some((p) => p.endsWith(`:${port}`)), `${ports} publishes ${port}`);
    assert.match(read("Dockerfile"), new RegExp(`^EXPOSE ${port}$`, "m"));
  });

  test("depends_on targets exist, and waited-for services have healthchecks", () => {
    const app = asMap(services.trialgraph, "trialgraph");
    const deps = asMap(app.depends_on, "trialgraph depends_on");
    assert.equal(asMap(deps["minio-init"], "minio-init dep").condition, "service_completed_successfully");
    assert.equal(asMap(deps.redis, "redis dep").condition, "service_healthy");
    assert.equal(asMap(deps.postgres, "postgres dep").condition, "service_healthy");
    assert.equal(asMap(asMap(asMap(services["minio-init"], "init").depends_on, "init deps").minio, "minio dep").condition, "service_healthy");
    for (const [name, svc] of Object.entries(services)) {
      const dependsOn = asMap(svc, name).depends_on;
      if (!dependsOn) continue;
      for (const [target, spec] of Object.entries(asMap(dependsOn, `${name}.depends_on`))) {
        assert.ok(target in services, `${name} depends on unknown ${target}`);
        const condition = asMap(spec, `${name}.depends_on.${target}`).condition;
        assert.ok(["service_started", "service_healthy", "service_completed_successfully"].includes(asString(condition, "condition")));
        if (condition === "service_healthy") assert.ok(asMap(services[target], target).healthcheck, `${target} needs a healthcheck`);
      }
    }
    for (const name of ["trialgraph", "minio", "redis", "postgres"]) {
      const hc = asMap(asMap(services[name], name).healthcheck, `${name}.healthcheck`);
      const testCmd = asList(hc.test, `${name}.healthcheck.test`);
      assert.ok(testCmd[0] === "CMD" || testCmd[0] === "CMD-SHELL");
      for (const key of ["interval", "timeout"]) assert.match(asString(hc[key], key), /^\d+(ms|s|m)$/);
    }
    const appHc = asList(asMap(app.healthcheck, "hc").test, "hc test").join(" ");
    assert.match(appHc, new RegExp(`127\\.0\\.0\\.1:${env().PORT}/healthz`));
  });

  test("the one-shot creates the bucket with variables it defines", () => {
    const init = asMap(services["minio-init"], "minio-init");
    const entry = asList(init.entrypoint, "entrypoint").map((s) => asString(s, "entrypoint part"));
    assert.deepEqual(entry.slice(0, 2), ["/bin/sh", "-c"]);
    const script = interpolate(entry[2], SAMPLE_ENV); // $$VAR becomes $VAR for the container's shell
    assert.match(script, /mc alias set local http:\/\/minio:9000 /);
    assert.match(script, /mc mb --ignore-existing local\//);
    const initEnv = asMap(init.environment, "minio-init environment");
    for (const [, name] of script.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)) assert.ok(name in initEnv, `${name} is set for minio-init`);
    assert.match(asString(initEnv.TRIALGRAPH_BUCKET, "bucket"), /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);
    assert.equal(init.restart, "no");
  });

  test("named volumes are declared", () => {
    const declared = Object.keys(asMap(compose.volumes, "volumes"));
    for (const [name, svc] of Object.entries(services)) {
      for (const v of asList(asMap(svc, name).volumes ?? [], `${name}.volumes`)) {
        const source = asString(v, "volume").split(":")[0];
        if (!source.startsWith(".") && !source.startsWith("/")) assert.ok(declared.includes(source), `${source} declared`);
      }
    }
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  // Join continuation lines so each instruction is one line.
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string>; main: string };
  const tsconfig = JSON.parse(read("tsconfig.json")) as { compilerOptions: { outDir: string; rootDir: string } };

  test("node:24-bookworm-slim stages, libxgboost0, npm ci / build / prune", () => {
    const froms = instructions.filter((l) => l.startsWith("FROM "));
    assert.ok(froms.length >= 1);
    for (const f of froms) assert.match(f, /^FROM node:24-bookworm-slim( AS \w+)?$/);
    assert.ok(instructions.some((l) => /^RUN apt-get update .*apt-get install -y .*libxgboost0/.test(l)));
    const runs = instructions.filter((l) => l.startsWith("RUN ")).join("\n");
    assert.match(runs, /npm ci\b/);
    assert.match(runs, /npm prune --omit=dev/);
    assert.ok(runs.indexOf("npm ci") < runs.indexOf("npm run build") && runs.indexOf("npm run build") < runs.indexOf("npm prune"));
  });

  test("every npm script it runs exists in package.json", () => {
    const used = [...dockerfile.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]);
    assert.ok(used.includes("build"));
    for (const s of used) assert.ok(pkg.scripts[s], `package.json has script ${s}`);
    for (const m of dockerfile.matchAll(/--config (\S+)/g)) assert.ok(existsSync(path.join(ROOT, m[1])), `${m[1]} exists`);
  });

  test("CMD runs what `npm start` runs, the entry tsc emits for src/server.ts", () => {
    const cmd = instructions.find((l) => l.startsWith("CMD "));
    assert.ok(cmd);
    const argv = JSON.parse(cmd.slice(4)) as string[];
    // `npm start` may set environment variables first; the image sets them with ENV.
    const start = pkg.scripts.start as string;
    const assignments = [...(/^(\w+=\S+\s+)+/.exec(start)?.[0] ?? "").matchAll(/(\w+)=(\S+)\s+/g)];
    assert.deepEqual(argv.join(" "), start.replace(/^(\w+=\S+\s+)+/, ""));
    for (const [, name, value] of assignments) {
      assert.match(dockerfile, new RegExp(`ENV[^\\n]*(\\\\\\n[^\\n]*)*\\b${name}=${value}\\b`), `the image sets ${name}=${value}`);
    }
    // node, its flags (heap settings), then the entry.
    assert.equal(argv[0], "node");
    assert.ok(argv.slice(1, -1).every((a) => a.startsWith("--")), `only node flags before the entry: ${argv.join(" ")}`);
    const entry = argv[argv.length - 1];
    assert.equal(entry, pkg.main);
    const emitted = path.join(tsconfig.compilerOptions.outDir, path.relative(tsconfig.compilerOptions.rootDir, "src/server.ts")).replace(/\.ts$/, ".js");
    assert.equal(entry, emitted);
    assert.ok(existsSync(path.join(ROOT, "src/server.ts")), "src/server.ts exists");
  });

  test("HEALTHCHECK probes /healthz on PORT; EXPOSE matches the default PORT", () => {
    const hc = instructions.find((l) => l.startsWith("HEALTHCHECK "));
    assert.ok(hc);
    assert.match(hc, /\/healthz/);
    assert.match(hc, /process\.env\.PORT \|\| 4000/);
    assert.ok(instructions.includes("EXPOSE 4000"));
    assert.match(dockerfile, /PORT=4000/);
    assert.match(dockerfile, /HOST=0\.0\.0\.0/);
  });

  test("what it COPYs from the context exists and is not excluded by .dockerignore", () => {
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const must of ["node_modules", "dist", ".git"]) assert.ok(ignored.includes(must), `.dockerignore excludes ${must}`);
    const copies = instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from="));
    assert.ok(copies.length > 0);
    for (const c of copies) {
      const parts = c.split(/\s+/).slice(1).filter((p) => !p.startsWith("--"));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(path.join(ROOT, src)), `COPY source ${src} exists`);
        assert.ok(!ignored.some((pattern) => pattern === src || src.startsWith(`${pattern}/`)), `${src} is not ignored`);
      }
    }
  });
});
