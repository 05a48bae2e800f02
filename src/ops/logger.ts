/**
 * The operational log (not the sealed log): what the gate is doing, for operators. JSON lines by
 * default. It must never carry secrets: callers log key references and fingerprints, never key bytes,
 * PINs or session plaintext.
 */
import winston from 'winston';

export interface LoggerOptions {
  readonly level?: 'error' | 'warn' | 'info' | 'debug';
  readonly file?: string;
  readonly format?: 'json' | 'text';
}

export function createLogger(options: LoggerOptions = {}): winston.Logger {
  const format =
    options.format === 'text'
      ? winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level, message, ...rest }) => {
            const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${level} ${String(message)}${extra}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  const transports: winston.transport[] = [new winston.transports.Stream({ stream: process.stderr })];
  if (options.file) transports.push(new winston.transports.File({ filename: options.file }));
  return winston.createLogger({ level: options.level ?? 'info', format, transports });
}
