import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from './logger';

/** kafkajs with its logs routed into the service's pino logger. */
export function createKafka(options: { clientId: string; brokers: string[]; logger: Logger }): Kafka {
  const toPino = (level: logLevel) => ({ namespace, log }: LogEntry) => {
    const { message, ...rest } = log;
    const target = options.logger.child({ component: `kafkajs.${namespace}` });
    if (level === logLevel.ERROR) target.error(rest, message);
    else if (level === logLevel.WARN) target.warn(rest, message);
    else target.debug(rest, message);
  };
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: toPino,
    retry: { initialRetryTime: 200, retries: 8 },
  });
}
