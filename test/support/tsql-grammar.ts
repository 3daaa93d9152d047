/**
 * A T-SQL syntax check: the ANTLR grammars-v4 TSql grammar (prebuilt by `antlr4ts-sql`), with an error
 * listener that collects every lexer and parser error, so a statement that does not parse fails the test.
 * It checks grammar only (names, types and permissions need a server); test/unit/tsql-grammar.test.ts proves
 * it rejects PostgreSQL-only syntax and broken statements.
 */
import { createRequire } from 'node:module';
import type * as Antlr from 'antlr4ts';
import type { PredictionMode as PredictionModes } from 'antlr4ts/atn/PredictionMode.js';
import type { TSqlLexer as Lexer } from 'antlr4ts-sql/dist/src/grammar-output/tsql/TSqlLexer.js';
import type { TSqlParser as Parser } from 'antlr4ts-sql/dist/src/grammar-output/tsql/TSqlParser.js';
import type { CaseChangingStream as CaseChanging } from 'antlr4ts-sql/dist/src/models/CaseChangingStream.js';

// The packages are CommonJS; antlr4ts-sql's index loads every dialect, so only the TSql files are required.
const require = createRequire(import.meta.url);
const antlr: typeof Antlr = require('antlr4ts');
const { PredictionMode }: { PredictionMode: typeof PredictionModes } = require('antlr4ts/atn/PredictionMode');
const {
  CaseChangingStream,
}: { CaseChangingStream: typeof CaseChanging } = require('antlr4ts-sql/dist/src/models/CaseChangingStream');
const { TSqlLexer }: { TSqlLexer: typeof Lexer } = require('antlr4ts-sql/dist/src/grammar-output/tsql/TSqlLexer');
const { TSqlParser }: { TSqlParser: typeof Parser } = require('antlr4ts-sql/dist/src/grammar-output/tsql/TSqlParser');

/**
 * The syntax errors of a T-SQL batch (`line:column message`); empty when it parses. SLL prediction only:
 * with full LL the grammar is looser than SQL Server (it takes `LIMIT 1` and `RETURNING x` as an alias and
 * a stray expression) and takes seconds per statement; SLL rejects those and parses ours in milliseconds.
 */
export function tsqlSyntaxErrors(text: string): string[] {
  return parse(text, PredictionMode.SLL);
}

function parse(text: string, mode: PredictionModes): string[] {
  const errors: string[] = [];
  const listener = {
    syntaxError: (_r: unknown, _s: unknown, line: number, column: number, message: string) => {
      errors.push(`${line}:${column} ${message}`);
    },
  };
  // The grammar's keywords are upper case: the stream upper-cases what the lexer sees, not the text.
  const lexer = new TSqlLexer(new CaseChangingStream(antlr.CharStreams.fromString(text), true) as never);
  lexer.removeErrorListeners();
  lexer.addErrorListener(listener);
  const parser = new TSqlParser(new antlr.CommonTokenStream(lexer));
  parser.removeErrorListeners();
  parser.addErrorListener(listener);
  parser.interpreter.setPredictionMode(mode);
  parser.tsql_file();
  return errors;
}
