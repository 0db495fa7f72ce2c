/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line
 * break. A cell a spreadsheet would run as a formula (starting with = + - @,
 * or a tab or carriage return that some strip first) gets a leading ' so it
 * is shown as text (OWASP "CSV injection").
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: readonly (string | number | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
