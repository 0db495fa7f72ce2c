// Imported first by each bench: hub logs at warn, so the tables stay readable.
process.env.HOICHAN_LOG_LEVEL ??= 'warn';
