import { z } from 'zod';

/**
 * One way to turn a zod failure into words, for every edge that validates
 * input (signaling requests, uplink batches, HTTP query strings, hub and site
 * configuration): the path to the bad field, then what is wrong with it.
 */

/** `media.listenInfos[0].port`; keys that are not identifiers are quoted. */
export function formatIssuePath(path: ReadonlyArray<string | number>, root = '(root)'): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out || root;
}

/** What is wrong, without the path. A discriminated union reports only its discriminator: say what is allowed. */
export function issueMessage(issue: z.ZodIssue): string {
  if (issue.code === z.ZodIssueCode.invalid_union_discriminator) {
    return `Expected one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}`;
  }
  return issue.message;
}

/** Every issue as 'path: message' (configuration files, where the reader fixes them all at once). */
export function describeIssues(error: z.ZodError, root = '(root)'): string[] {
  return error.issues.map((issue) => `${formatIssuePath(issue.path, root)}: ${issueMessage(issue)}`);
}

/**
 * The first issue as 'field.path: message' with zod's own dotted path and
 * message (a request or batch: the client fixes one thing and sends again;
 * clients match these words, so they stay as zod says them).
 */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid payload';
  const path = issue.path.length > 0 ? issue.path.join('.') : 'payload';
  return `${path}: ${issue.message}`;
}
