export { Journal } from './journal.js';
export type { JournalOptions, JournalDepth, DeviceDepth, JournalStats, JournalEvents, AppendOnceResult } from './journal.js';
export type { LedgerEntry, SeqRanges } from './format.js';
export { JournalKeyError } from './format.js';
export { readJournalKeyFile } from './keyfile.js';
export { DEFAULT_LEDGER_BOUNDS, type LedgerBounds } from './ledger.js';
export type { FsyncPolicy } from './durability.js';
export type { DroppedRange } from './checkpoint.js';
export { JournalFullError, JournalClosedError } from './errors.js';
