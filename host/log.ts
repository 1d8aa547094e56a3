// The launcher's logger: JSON lines when not a terminal (docker logs, CI), readable when it is.

import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

/** The launcher's logger; settings come parsed (parseLogEnv), never raw from the environment. */
export function createLogger(settings: { level: string; format?: "json" | "pretty" | undefined } = { level: "info" }): Logger {
  const { level } = settings;
  if (settings.format === "pretty" || (settings.format === undefined && process.stderr.isTTY)) {
    // A stream, not a transport: transports load worker files a bundle does not carry.
    return pino({ level }, pretty({ destination: 2, colorize: process.stderr.isTTY, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,src", messageFormat: "{if src}{src}| {end}{msg}", sync: true }));
  }
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}
