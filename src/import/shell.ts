// What a crontab command line says to a reader: is it a plain list of words (safe to run without a
// shell), which program is it about (for the job's name), does it start a daemon, and which files
// and folders does it write (for the service's ReadWritePaths=). A best-effort reading of POSIX sh
// syntax: quotes, escapes, $VAR of known variables, ~, operators and redirections; what it cannot
// tell (a variable set at run time, $(...)) it reports as unknown rather than guessing.
import { basename, dirname, isAbsolute, posix } from 'node:path';

export interface Word {
  /** The text after quote removal and expansion of the variables known. */
  text: string;
  /** It holds something only known at run time ($UNSET, $(...), `...`). */
  dynamic: boolean;
}

type Token = { t: 'word'; w: Word } | { t: 'op'; op: string } | { t: 'redir'; op: string; fd: string };

const OPS = ['&&', '||', ';;', '&>>', '&>', '>>', '>|', '>&', '<<-', '<<', '<>', '<&', ';', '&', '|', '(', ')', '>', '<'];

/** Splits a command line into words, operators and redirections, expanding $NAME, ${NAME} and ~ from `env`. */
export function tokenize(line: string, env: Record<string, string>): Token[] {
  const out: Token[] = [];
  let i = 0;
  let cur: Word | null = null;
  const word = (): Word => (cur ??= { text: '', dynamic: false });
  const flush = () => {
    if (cur) out.push({ t: 'word', w: cur });
    cur = null;
  };
  const variable = (quoted: boolean): void => {
    // at "$"
    const rest = line.slice(i + 1);
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(rest) ?? /^([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
    if (m && env[m[1]!] !== undefined) {
      word().text += env[m[1]!];
      i += 1 + m[0].length;
      return;
    }
    const w = word();
    w.dynamic = true;
    if (rest.startsWith('(') || rest.startsWith('{')) {
      // $( ... ) or ${ ... }: to the matching close
      const open = rest[0]!;
      const close = open === '(' ? ')' : '}';
      let depth = 0;
      let j = 0;
      for (; j < rest.length; j++) {
        if (rest[j] === open) depth++;
        else if (rest[j] === close && --depth === 0) break;
      }
      w.text += `$${rest.slice(0, j + 1)}`;
      i += 2 + j;
      return;
    }
    const name = /^([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(rest);
    w.text += `$${name ? name[0] : ''}`;
    i += 1 + (name ? name[0].length : 0);
    void quoted;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      flush();
      i++;
      continue;
    }
    if (c === '#' && cur === null) break; // a comment, to the end of the line
    if (c === '\\') {
      if (i + 1 < line.length) word().text += line[i + 1];
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word().text += line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end + 1;
      continue;
    }
    if (c === '"') {
      const w = word();
      i++;
      while (i < line.length && line[i] !== '"') {
        const d = line[i]!;
        if (d === '\\' && i + 1 < line.length && '$`"\\\n'.includes(line[i + 1]!)) {
          w.text += line[i + 1];
          i += 2;
        } else if (d === '$') variable(true);
        else if (d === '`') {
          const end = line.indexOf('`', i + 1);
          w.dynamic = true;
          w.text += line.slice(i, end < 0 ? line.length : end + 1);
          i = end < 0 ? line.length : end + 1;
        } else {
          w.text += d;
          i++;
        }
      }
      i++;
      continue;
    }
    if (c === '$') {
      variable(false);
      continue;
    }
    if (c === '`') {
      const end = line.indexOf('`', i + 1);
      const w = word();
      w.dynamic = true;
      w.text += line.slice(i, end < 0 ? line.length : end + 1);
      i = end < 0 ? line.length : end + 1;
      continue;
    }
    if (c === '~' && cur === null && (i + 1 === line.length || '/ \t'.includes(line[i + 1]!))) {
      if (env.HOME !== undefined) word().text += env.HOME;
      else word().dynamic = true;
      i++;
      continue;
    }
    const op = OPS.find((o) => line.startsWith(o, i));
    if (op) {
      // A redirection may follow a file descriptor number: 2>, 2>>, 1>&2.
      const fdWord = cur as Word | null;
      const isFd = fdWord !== null && /^[0-9]+$/.test(fdWord.text) && !fdWord.dynamic && /[><]/.test(op);
      if (isFd) cur = null;
      else flush();
      if (/[<>]/.test(op)) out.push({ t: 'redir', op, fd: isFd ? fdWord.text : '' });
      else out.push({ t: 'op', op });
      i += op.length;
      continue;
    }
    word().text += c;
    i++;
  }
  flush();
  return out;
}

/** Builtins and keywords of sh: a command starting with one needs the shell. */
const SHELL_WORDS = new Set(
  'cd exit export set unset . source exec eval trap read wait ulimit umask alias unalias shift return break continue times type hash getopts command if then else elif fi for while until do done case esac function { } ! [[ echo printf test [ kill pwd true false : local readonly'.split(
    ' ',
  ),
);

/**
 * Whether the command is a plain list of words that runs the same without a shell: only letters,
 * digits and . _ / : , + @ = - between blanks, and its first word is a program (not a builtin,
 * keyword or NAME=value).
 */
export function isPlainWords(command: string): boolean {
  if (!/^[ \t]*[A-Za-z0-9_./:,+@=-]+([ \t]+[A-Za-z0-9_./:,+@=-]+)*[ \t]*$/.test(command)) return false;
  const first = command.trim().split(/[ \t]+/)[0]!;
  return !first.includes('=') && !SHELL_WORDS.has(first);
}

export function plainWords(command: string): string[] {
  return command.trim().split(/[ \t]+/);
}

interface Simple {
  words: Word[];
  redirs: Array<{ op: string; fd: string; target: Word | null }>;
}

/** The simple commands of a line (split at ; & && || | ( )), keywords such as { and then dropped. */
function simpleCommands(tokens: Token[]): Simple[] {
  const out: Simple[] = [];
  let cur: Simple = { words: [], redirs: [] };
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.t === 'op') {
      out.push(cur);
      cur = { words: [], redirs: [] };
      continue;
    }
    if (t.t === 'redir') {
      const next = tokens[k + 1];
      const target = next?.t === 'word' ? next.w : null;
      if (target) k++;
      cur.redirs.push({ op: t.op, fd: t.fd, target });
      continue;
    }
    if (cur.words.length === 0 && /^(\{|\}|!|then|do|else|elif|if|while|until|time)$/.test(t.w.text) && !t.w.dynamic) continue;
    if (cur.words.length === 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(t.w.text)) continue; // NAME=value before a command
    cur.words.push(t.w);
  }
  out.push(cur);
  return out.filter((s) => s.words.length > 0 || s.redirs.length > 0);
}

/** Programs that run the rest of their arguments as a command: how many words of theirs to skip. */
function unwrap(words: Word[]): { words: Word[]; wrappers: string[] } {
  const wrappers: string[] = [];
  let w = words;
  for (let guard = 0; guard < 8 && w.length > 0; guard++) {
    const prog = basename(w[0]!.text);
    let k = 1;
    const skipOpts = (withValue: RegExp = /^$/) => {
      while (k < w.length && w[k]!.text.startsWith('-') && w[k]!.text !== '--') {
        if (withValue.test(w[k]!.text)) k++;
        k++;
      }
      if (w[k]?.text === '--') k++;
    };
    if (
      prog === 'nice' ||
      prog === 'chronic' ||
      prog === 'cronic' ||
      prog === 'nohup' ||
      prog === 'exec' ||
      prog === 'command' ||
      prog === 'time' ||
      prog === 'run-one'
    )
      skipOpts(/^-n$/);
    else if (prog === 'ionice') skipOpts(/^-[cnpP]$/);
    else if (prog === 'setsid') skipOpts();
    else if (prog === 'stdbuf') skipOpts(/^-[ioe]$/);
    else if (prog === 'sudo') skipOpts(/^-[ugprCDhT]$/);
    else if (prog === 'timeout') {
      skipOpts(/^-[sk]$/);
      k++; // the duration
    } else if (prog === 'flock') {
      skipOpts(/^-[wE]$/);
      k++; // the lock file
    } else if (prog === 'env') {
      skipOpts(/^-[uCS]$/);
      while (k < w.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[k]!.text)) k++;
    } else if (prog === 'systemd-cat') skipOpts(/^-[tp]$/);
    else break;
    wrappers.push(prog);
    w = w.slice(k);
  }
  return { words: w, wrappers };
}

/** The arguments that are not options (after "--" everything is one). */
function operands(words: Word[], withValue: RegExp = /^$/): Word[] {
  const out: Word[] = [];
  let optsDone = false;
  for (let k = 0; k < words.length; k++) {
    const t = words[k]!.text;
    if (!optsDone && t === '--') {
      optsDone = true;
      continue;
    }
    if (!optsDone && t.startsWith('-') && t !== '-') {
      if (withValue.test(t)) k++;
      continue;
    }
    out.push(words[k]!);
  }
  return out;
}

/** The value of an option: -o X, -oX, --output X, --output=X. */
function optionValues(words: Word[], short: string[], long: string[]): Word[] {
  const out: Word[] = [];
  for (let k = 0; k < words.length; k++) {
    const t = words[k]!.text;
    if (t === '--') break;
    for (const s of short) {
      if (t === s && words[k + 1]) out.push(words[k + 1]!);
      else if (t.startsWith(s) && t.length > s.length && !t.startsWith('--')) out.push({ ...words[k]!, text: t.slice(s.length) });
    }
    for (const l of long) {
      if (t === l && words[k + 1]) out.push(words[k + 1]!);
      else if (t.startsWith(`${l}=`)) out.push({ ...words[k]!, text: t.slice(l.length + 1) });
    }
  }
  return out;
}

/** A place the command writes: `path` as written (after expansion), and whether it is a folder itself. */
export interface Write {
  word: Word;
  /** How the command writes it, for the preview: "> redirection", "tee", "cp destination"… */
  how: string;
  /** The word names a folder written into (find -delete, wget -P); otherwise a file (its folder is written). */
  folder: boolean;
  /** The absolute path, or null when it is only known at run time. */
  path: string | null;
}

const INTERPRETERS = /^(sh|bash|dash|zsh|ksh|python[0-9.]*|perl|ruby|php[0-9.]*|node|nodejs|Rscript|lua|tclsh|awk)$/;

/** The files and folders a command line writes, as far as this reading can tell. */
export function commandWrites(command: string, env: Record<string, string>, cwd: string): Write[] {
  const writes: Write[] = [];
  // The working folder as the line goes: `cd DIR &&` moves it; an unknown one makes relative paths unknown.
  let dir: string | null = cwd;
  for (const s of simpleCommands(tokenize(command, env))) {
    const here: string | null = dir;
    const at = (w: Write): Write => ({ ...w, path: here === null && !isAbsolute(w.word.text) ? null : resolvePath(w.word, here ?? '/') });
    const before = writes.length;
    for (const r of s.redirs) {
      if (!r.target || !/^(>|>>|>\||&>|&>>)$/.test(r.op)) continue;
      writes.push({ word: r.target, how: `${r.fd}${r.op} redirection`, folder: false, path: null });
    }
    const { words, wrappers } = unwrap(s.words);
    if (wrappers.includes('flock')) {
      const i = s.words.findIndex((w) => basename(w.text) === 'flock');
      const lock = operands(s.words.slice(i + 1), /^-[wE]$/)[0];
      if (lock) writes.push({ word: lock, how: 'flock lock file', folder: false, path: null });
    }
    const prog = basename(words[0]?.text ?? '');
    const args = words.slice(1);
    const add = (ws: Word[], how: string, folder = false) => {
      for (const w of ws) writes.push({ word: w, how, folder, path: null });
    };
    if (prog === 'cd') {
      const to = args[0];
      dir = to === undefined ? (env.HOME ?? null) : here === null && !isAbsolute(to.text) ? null : resolvePath(to, here ?? '/');
    }
    switch (prog) {
      case 'tee':
        add(operands(args), 'tee');
        break;
      case 'cp':
      case 'mv':
      case 'install':
      case 'ln':
      case 'rsync':
      case 'scp': {
        const target = optionValues(args, ['-t'], ['--target-directory']);
        add(target, `${prog} destination`, true);
        const ops = operands(args, /^(-[eSt]|--exclude|--include|--filter|--rsh|--suffix|-m|--mode|-o|-g|--owner|--group)$/);
        if (!target.length && ops.length >= 2) {
          const dest = ops[ops.length - 1]!;
          // host:path is another machine
          if (!/^[^/]*:/.test(dest.text)) add([dest], `${prog} destination`, dest.text.endsWith('/'));
        }
        if (prog === 'mv') add(target.length ? ops : ops.slice(0, -1), 'mv source (removed)');
        break;
      }
      case 'tar': {
        const first = args[0]?.text ?? '';
        const oldStyle = /^[A-Za-z]+$/.test(first);
        const flags =
          args
            .filter((a) => /^-[A-Za-z]+$/.test(a.text))
            .map((a) => a.text.slice(1))
            .join('') + (oldStyle ? first : '');
        const long = args.map((a) => a.text);
        const creates = /[cruA]/.test(flags) || long.some((t) => /^--(create|append|update|concatenate)$/.test(t));
        const extracts = /x/.test(flags) || long.some((t) => /^--(extract|get)$/.test(t));
        const files: Word[] = optionValues(args, [], ['--file']);
        for (let k = 0; k < args.length; k++) {
          const t = args[k]!.text;
          if ((/^-[A-Za-z]*f$/.test(t) || (k === 0 && oldStyle && t.includes('f'))) && args[k + 1]) files.push(args[k + 1]!);
        }
        if (creates)
          add(
            files.filter((f) => f.text !== '-'),
            'tar archive',
          );
        if (extracts) {
          const into = optionValues(args, ['-C'], ['--directory']);
          if (into.length) add(into, 'tar -x folder', true);
          else add([{ text: '.', dynamic: false }], 'tar -x into the working folder', true);
        }
        break;
      }
      case 'pg_dump':
      case 'pg_dumpall':
        add(optionValues(args, ['-f'], ['--file']), `${prog} -f`);
        break;
      case 'pg_basebackup':
        add(optionValues(args, ['-D'], ['--pgdata']), 'pg_basebackup -D', true);
        break;
      case 'mysqldump':
      case 'mariadb-dump':
        add(optionValues(args, ['-r'], ['--result-file']), `${prog} --result-file`);
        break;
      case 'curl':
        add(optionValues(args, ['-o'], ['--output']), 'curl -o');
        add(optionValues(args, [], ['--output-dir']), 'curl --output-dir', true);
        break;
      case 'wget':
        add(optionValues(args, ['-O'], ['--output-document']), 'wget -O');
        add(optionValues(args, ['-o', '-a'], ['--output-file', '--append-output']), 'wget log');
        add(optionValues(args, ['-P'], ['--directory-prefix']), 'wget -P', true);
        break;
      case 'find': {
        const roots: Word[] = [];
        for (const a of args) {
          if (a.text.startsWith('-') || a.text === '(' || a.text === '!') break;
          roots.push(a);
        }
        const t = args.map((a) => a.text);
        const deletes =
          t.includes('-delete') ||
          t.some((x, k) => (x === '-exec' || x === '-execdir') && /^(rm|\/bin\/rm|\/usr\/bin\/rm|mv|gzip)$/.test(t[k + 1] ?? ''));
        if (deletes) add(roots.length ? roots : [{ text: '.', dynamic: false }], 'find -delete', true);
        add(optionValues(args, [], ['-fprint', '-fprintf', '-fls']), 'find -fprint');
        break;
      }
      case 'rm':
      case 'unlink':
      case 'rmdir':
      case 'shred':
      case 'mkdir':
      case 'touch':
      case 'chmod':
      case 'chown':
        add(operands(args, /^(-s|--size|-r|--reference|-m|--mode)$/).slice(prog === 'chmod' || prog === 'chown' ? 1 : 0), prog);
        break;
      case 'truncate':
        add(operands(args, /^(-s|--size|-r|--reference)$/), 'truncate');
        break;
      case 'gzip':
      case 'gunzip':
      case 'bzip2':
      case 'bunzip2':
      case 'xz':
      case 'unxz':
      case 'zstd':
        if (!args.some((a) => /^(-[a-z]*c[a-z]*|--stdout|--to-stdout)$/.test(a.text))) add(operands(args, /^(-o|-S|--suffix)$/), prog);
        break;
      case 'sed':
        if (args.some((a) => /^(-i.*|--in-place.*)$/.test(a.text))) {
          const hasScript = args.some((a) => /^(-e|-f|--expression|--file)/.test(a.text));
          add(operands(args, /^(-e|-f|--expression|--file|-l)$/).slice(hasScript ? 0 : 1), 'sed -i');
        }
        break;
      case 'dd':
        add(
          args.filter((a) => a.text.startsWith('of=')).map((a) => ({ ...a, text: a.text.slice(3) })),
          'dd of=',
        );
        break;
      case 'sqlite3': {
        const db = operands(args, /^-(cmd|separator|newline|nullvalue)$/)[0];
        if (db) add([db], 'sqlite3 database');
        break;
      }
      case '':
      case 'cd':
        break;
      default:
        if (!INTERPRETERS.test(prog)) add(optionValues(args, ['-o'], ['--output']), `${prog} -o`);
    }
    for (let k = before; k < writes.length; k++) writes[k] = at(writes[k]!);
  }
  return writes;
}

/** Why the line starts something that outlives it (a daemon), or null. */
export function daemonReason(command: string): string | null {
  const tokens = tokenize(command, {});
  // `a & b & wait` runs in parallel and waits: the run still finishes.
  const waits = simpleCommands(tokens).some((s) => s.words[0]?.text === 'wait');
  if (!waits && tokens.some((t) => t.t === 'op' && t.op === '&')) return 'it puts a process in the background (&)';
  for (const s of simpleCommands(tokens)) {
    for (const w of s.words.slice(0, 4)) {
      const p = basename(w.text);
      if (p === 'nohup' || p === 'setsid' || p === 'daemon' || p === 'daemonize' || p === 'disown') return `it runs ${p}`;
    }
    const { words } = unwrap(s.words);
    const prog = basename(words[0]?.text ?? '');
    const t = words.map((w) => w.text);
    if (prog === 'start-stop-daemon' && t.some((x) => x === '--background' || /^-[a-zA-Z]*b/.test(x)))
      return 'it runs start-stop-daemon --background';
    if (
      prog === 'screen' &&
      (t.some((x) => /^-[a-zA-Z]*d[a-zA-Z]*m|^-[a-zA-Z]*m[a-zA-Z]*d/.test(x)) || (t.includes('-d') && t.includes('-m')))
    )
      return 'it starts a detached screen session (screen -dm)';
    if (prog === 'tmux' && t.some((x) => /^(new|new-session)$/.test(x)) && t.some((x) => /^-[a-zA-Z]*d/.test(x)))
      return 'it starts a detached tmux session (tmux new -d)';
  }
  return null;
}

/** The command without what sends it to the background (a trailing &, a leading nohup or setsid). */
export function foregroundCommand(command: string): string {
  return command.replace(/[ \t]*(?<!&)&[ \t]*$/, '').replace(/^[ \t]*(nohup|setsid([ \t]+-[a-z]+)*)[ \t]+/, '');
}

const NAME_SKIP = /^(test|\[|\[\[|cd|true|false|:|sleep|echo|printf|export|set|exit|umask|ulimit|wait|source|\.)$/;

/** The word a job is named after: the script an interpreter runs, run-parts' folder, else the program. */
export function nameHint(command: string): string | null {
  const simples = simpleCommands(tokenize(command, {}))
    .map((s) => unwrap(s.words).words)
    .filter((w) => w.length > 0);
  const pick = simples.find((w) => !NAME_SKIP.test(basename(w[0]!.text))) ?? simples[0];
  if (!pick) return null;
  const prog = basename(pick[0]!.text);
  const args = pick.slice(1);
  if (prog === 'run-parts') {
    const dir = operands(args, /^(--arg|-a|-u|--umask|--regex)$/).pop();
    return dir ? basename(dir.text) : prog;
  }
  if (INTERPRETERS.test(prog)) {
    const c = args.findIndex((a) => a.text === '-c');
    if (c >= 0 && args[c + 1]) return nameHint(args[c + 1]!.text) ?? prog;
    const script = operands(args, /^(-m|-e|-E|-I|-r|-W|-X|-O)$/)[0];
    const module = args.findIndex((a) => a.text === '-m');
    if (module >= 0 && args[module + 1]) return args[module + 1]!.text;
    return script ? basename(script.text).replace(/\.(sh|bash|py|pl|rb|php|js|mjs|lua|R)$/i, '') : prog;
  }
  if (prog === 'java') {
    const jar = optionValues(args, [], ['-jar'])[0];
    if (jar) return basename(jar.text).replace(/\.jar$/, '');
  }
  return prog.replace(/\.(sh|bash|py|pl|rb|php|js)$/i, '');
}

/** A path the command wrote, made absolute against the working folder; null when it cannot be known. */
export function resolvePath(word: Word, cwd: string): string | null {
  if (word.dynamic || word.text === '') return null;
  const p = isAbsolute(word.text) ? word.text : posix.join(cwd, word.text);
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/** The folder that must be writable for a write: the folder itself, or the file's folder. */
export function folderOf(path: string, folder: boolean): string {
  // A wildcard can only be in the last part here; its folder is what is written.
  if (folder && !/[*?[]/.test(basename(path))) return path;
  return dirname(path);
}
