// `fleetwave schema release|app`: the JSON Schema of a release or app file, for editors (docs/schema/ holds the same).
import type { Command } from 'commander';
import { BadInputError } from '../../common/errors.js';
import type { Io } from '../io.js';
import { specJsonSchema, type SpecKind } from '../spec-file.js';

const KINDS: readonly SpecKind[] = ['release', 'app'];

export function registerSchemaCommand(program: Command, io: Io): void {
  program
    .command('schema')
    .description('print the JSON Schema of a release file (release create -f) or an app file (app apply -f)')
    .argument('<kind>', KINDS.join(' or '))
    .action((kind: string) => {
      if (!(KINDS as readonly string[]).includes(kind)) throw new BadInputError(`schema: '${kind}' is not one of ${KINDS.join(', ')}`);
      io.out(specJsonSchema(kind as SpecKind).trimEnd());
    });
}
