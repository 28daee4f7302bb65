// HTML is written with one tagged template, `html`, and every value put into it is text unless it
// is itself `html`: a job's output, an alert's message or a device label cannot become markup
// (law 8), because escaping is what happens when nobody thinks about it. Outside text also passes
// through textAsData first, the sanitizer every other surface uses (control and bidi characters
// made visible).
import { escapeHtml, textAsData } from '../text.js';

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | null | undefined | false | Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(textAsData(String(v)));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}
