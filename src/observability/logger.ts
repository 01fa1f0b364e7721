/**
 * The service's logger: JSON lines for log collectors, or one readable line per entry on a terminal
 * (LOG_FORMAT, by default pretty when stdout is a TTY).
 */
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";

export function createLogger(level: string, format: LogFormat): Logger {
  if (format === "json") return pino({ level });
  return pino(
    { level },
    pretty({
      colorize: Boolean(process.stdout.isTTY),
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname",
      singleLine: true,
      // Synchronous, so a line written just before process.exit() is not lost.
      sync: true,
    }),
  );
}
