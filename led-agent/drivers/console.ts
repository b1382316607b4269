/**
 * The terminal as an LED, for the demo and for trying a configuration: one
 * line per new light, a coloured swatch and the word on a TTY, the plain word
 * (journal-friendly, no ANSI) otherwise. Patterns are named, not animated, so
 * the terminal is not flooded.
 */
import type { Light } from '../light.js';
import { type Driver, type DriverFactory, isBlack, parseColor } from './driver.js';

export interface ConsoleOptions {
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function consoleLine(light: Light, tty: boolean): string {
  const pattern = light.pattern === 'steady' || light.pattern === 'off' ? '' : `, ${light.pattern}`;
  if (!tty) return `LED ${light.state} (${light.color}${pattern}): ${light.because}`;
  const rgb = parseColor(light.color);
  const swatch =
    isBlack(rgb) || light.pattern === 'off'
      ? '\x1b[2m[    ]\x1b[0m'
      : `\x1b[48;2;${rgb.join(';')}m      \x1b[0m`;
  return `${swatch} \x1b[1m${light.state}\x1b[0m${pattern ? ` (${light.pattern})` : ''} \x1b[2m${light.because}\x1b[0m`;
}

export function openConsoleLed(options: ConsoleOptions = {}): Driver {
  const out = options.out ?? process.stdout;
  return {
    name: 'console',
    motion: 'steady',
    announce(light) {
      out.write(`${consoleLine(light, Boolean(out.isTTY))}\n`);
    },
    set: async () => {},
    close: async () => {},
  };
}

export const consoleDriver: DriverFactory = async () => openConsoleLed();
