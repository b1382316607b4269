/** What `offsite` exits with: the commands, the runner and the steps all speak these codes. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** EX_TEMPFAIL: the drive was not plugged in, or another run of it was going: nothing was started */
  tempfail: 75,
} as const;
