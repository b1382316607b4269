/** A configuration problem, as thrown: no schema needed (the LED agent and its drivers throw it without loading zod). */
export interface Problem {
  keyPath: string;
  expected: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  /** every problem found, in the order of the file */
  readonly problems: readonly Problem[];
  constructor(file: string, keyPath: string, expected: string);
  constructor(file: string, problems: readonly Problem[]);
  constructor(file: string, keyPathOrProblems: string | readonly Problem[], expected = '') {
    const problems =
      typeof keyPathOrProblems === 'string' ? [{ keyPath: keyPathOrProblems, expected }] : keyPathOrProblems;
    super(problems.map((p) => `${file}: ${p.keyPath ? `${p.keyPath}: ` : ''}${p.expected}`).join('\n'));
    this.file = file;
    this.problems = problems;
  }
  /** the first problem's key path */
  get keyPath(): string {
    return this.problems[0]?.keyPath ?? '';
  }
  /** the first problem's expectation */
  get expected(): string {
    return this.problems[0]?.expected ?? '';
  }
}
