import pg from 'pg';

/**
 * Several statements in ONE extended-protocol exchange with Postgres: Parse/Bind/Describe/Execute for each, then a single
 * Sync, so they cost one network round trip instead of one each. Without a Sync between them Postgres stops at the
 * first failing statement and skips the rest up to the Sync (protocol docs, "Pipelining": "the backend will ignore
 * messages until the Sync"), so a later statement never runs after an earlier one failed. A BEGIN among them starts an
 * ordinary transaction block that stays open after the Sync, as a BEGIN sent on its own would.
 *
 * This is a query object node-postgres's Client accepts (anything with `submit`): the Client hands it the backend's
 * messages in order, and it passes each to the pg Query of the statement they belong to (a statement's messages end
 * with its CommandComplete), so every statement's rows are parsed by pg itself.
 */
export interface PipelinePart {
  text: string;
  values?: unknown[];
  /** a named prepared statement (parsed once per connection); unnamed otherwise */
  name?: string;
}

export interface PipelineResult {
  rows: unknown[];
  rowCount: number | null;
  command: string;
}

/** pg's Query, seen through the members this class uses (pg's typings do not describe them) */
interface PgQueryInternals {
  text: string;
  name?: string;
  values?: unknown[];
  types?: unknown;
  _results: PipelineResult;
  _canceledDueToError?: Error | false;
  hasBeenParsed(connection: PgConnection): boolean;
  handleRowDescription(msg: unknown): void;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: PgConnection): void;
}

/** pg's Connection (the protocol writer), the members used here */
export interface PgConnection {
  stream: { cork?(): void; uncork?(): void };
  parsedStatements: Record<string, string>;
  submittedNamedStatements: Record<string, string>;
  parse(config: { text: string; name?: string; types?: unknown }): void;
  bind(config: { portal: string; statement?: string; values: unknown[] }): void;
  describe(config: { type: 'P'; name: string }): void;
  execute(config: { portal: string; rows?: number }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

const { Query, utils } = pg as unknown as {
  Query: new (config: { text: string; values?: unknown[]; name?: string }) => PgQueryInternals;
  utils: { prepareValue(value: unknown, seen?: unknown): unknown };
};

export type PipelineCallback = (error: Error | null, results: PipelineResult[], failedPart: number) => void;

export class PipelinedQuery {
  private readonly parts: PgQueryInternals[];
  /** the statement the backend's next messages belong to */
  private current = 0;

  constructor(parts: PipelinePart[], readonly callback: PipelineCallback) {
    this.parts = parts.map((part) => new Query({ text: part.text, values: part.values ?? [], name: part.name }));
  }

  // The Client reads these when a statement's ParseComplete or ErrorResponse arrives, to note the named statements a
  // connection has parsed: they must name the statement being answered.
  get name(): string | undefined {
    return this.parts[this.current]?.name;
  }

  get text(): string | undefined {
    return this.parts[this.current]?.text;
  }

  /** Writes every statement and one Sync; returns an Error (the Client reports it) when one cannot be sent. */
  submit(connection: PgConnection): Error | null {
    let values: unknown[][];
    try {
      // mapped before anything is written: a value pg cannot serialize must not leave half an exchange on the wire
      values = this.parts.map((part) => (part.values ?? []).map((value, i) => utils.prepareValue(value, i)));
    } catch (error) {
      return error as Error;
    }
    for (const part of this.parts) {
      const previous = part.name ? (connection.parsedStatements[part.name] ?? connection.submittedNamedStatements[part.name]) : undefined;
      if (previous !== undefined && previous !== part.text) return new Error(`Prepared statements must be unique - '${part.name}' was used for a different statement`);
    }
    connection.stream.cork?.();
    try {
      this.parts.forEach((part, i) => {
        if (!part.hasBeenParsed(connection)) {
          connection.parse({ text: part.text, name: part.name, types: part.types });
          if (part.name) connection.submittedNamedStatements[part.name] = part.text;
        }
        connection.bind({ portal: '', statement: part.name, values: values[i]! });
        connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '', rows: 0 });
      });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(msg: unknown): void {
    this.parts[this.current]?.handleRowDescription(msg);
  }

  handleDataRow(msg: unknown): void {
    this.parts[this.current]?.handleDataRow(msg);
  }

  handleCommandComplete(msg: unknown, connection: PgConnection): void {
    this.parts[this.current]?.handleCommandComplete(msg, connection);
    this.current += 1;
  }

  handleEmptyQuery(): void {
    this.current += 1;
  }

  handlePortalSuspended(): void {
    // never asked for: every Execute fetches all rows
  }

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('No source stream defined');
  }

  handleCopyData(): void {
    // no COPY is sent through a pipeline
  }

  /** The backend refused the current statement and skipped the rest: reported with which statement failed. */
  handleError(error: Error, connection: PgConnection): void {
    // statements after the failed one were never parsed: forget their names, so the next use parses them
    for (const part of this.parts.slice(this.current + 1)) {
      if (part.name && connection.parsedStatements[part.name] === undefined) delete connection.submittedNamedStatements[part.name];
    }
    this.callback(error, [], this.current);
  }

  handleReadyForQuery(): void {
    const failed = this.parts.findIndex((part) => part._canceledDueToError);
    if (failed >= 0) {
      this.callback(this.parts[failed]!._canceledDueToError as Error, [], failed);
      return;
    }
    this.callback(null, this.parts.map((part) => part._results), -1);
  }
}
