// ESLint, type-aware (typescript-eslint reads tsconfig.json), over src/ and tests/.
// `npm run lint`; .ci/run runs it. A rule turned off or down says why, here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/', 'tests/fixtures/', 'tests/support/*.mjs', '**/*.js', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_name` marks a value left unused on purpose (a destructured field dropped, a callback's arg).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Background work is started on purpose without waiting (timers, watchers); each such promise
      // handles its own rejection, which the rule cannot see through a `void`.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      // A callback of Node's APIs (timers, child 'exit') may be async; errors are caught inside.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    // One clock (src/clock.ts): a reading anywhere else escapes the clock a test injects.
    files: ['src/**/*.ts'],
    ignores: ['src/clock.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'read the wall clock through src/clock.ts (a Clock, or wallNow())' },
        { object: 'performance', property: 'now', message: 'measure elapsed time with elapsedMs() from src/clock.ts' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'new Date() reads the wall clock: use new Date(clock.now()) or new Date(wallNow())',
        },
      ],
    },
  },
  {
    files: ['tests/**/*.ts'],
    rules: {
      // Tests read rows and JSON whose shape the assertion itself checks.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // vitest's expect(...).rejects and friends are awaited where it matters; a test's helper
      // promise left to the framework's timeout is reported there.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
