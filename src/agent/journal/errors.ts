/** The journal is at its size cap and holds no waveform readings left to drop. Nothing of the batch was taken. */
export class JournalFullError extends Error {
  readonly code = 'EJOURNALFULL';
  constructor(message: string) {
    super(message);
    this.name = 'JournalFullError';
  }
}

export class JournalClosedError extends Error {
  readonly code = 'EJOURNALCLOSED';
  constructor() {
    super('journal is closed');
    this.name = 'JournalClosedError';
  }
}
