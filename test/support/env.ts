// Loaded by mocha before any spec (see .mocharc.json): quiet logs unless asked.
process.env.NODE_ENV = 'test';
process.env.HOICHAN_LOG_LEVEL ??= 'silent';
