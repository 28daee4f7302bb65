// The import graph of src/, checked by `npm run lint:imports` (and .ci/run). Imports flow one
// way: cli → daemon → the features (config, schedule, run, watch, heal, report, notify, control)
// → store and the shared modules at the top of src/ (log, names, text). Type-only imports count:
// a circle of types is still a circle a reader has to hold in their head.
const FEATURES = '^src/(config|schedule|run|watch|heal|report|notify|control|web|import)/';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'A module may not import itself through others.', from: {}, to: { circular: true } },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      comment: 'Only the entry point (src/cli.ts) and the commands themselves import src/cli/.',
      from: { pathNot: '^src/(cli\\.ts|cli/)' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'daemon-only-below-cli',
      severity: 'error',
      comment: 'The daemon is wiring: only the command line starts it.',
      from: { pathNot: '^src/(cli\\.ts|cli/)' },
      to: { path: '^src/daemon\\.ts$' },
    },
    {
      name: 'store-is-below-the-features',
      severity: 'error',
      comment: 'The store knows tables, not features: it imports only itself and the shared modules.',
      from: { path: '^src/store/' },
      to: { path: [FEATURES, '^src/(cli|daemon)'] },
    },
    {
      name: 'shared-modules-import-nothing-of-ours',
      severity: 'error',
      comment: 'errors, events, glob, http, log, model, names and text are used everywhere; they depend on nothing in src/.',
      from: { path: '^src/(log|names|text|errors|events|glob|http|model)\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'sql-only-in-the-store',
      severity: 'error',
      comment: 'Nothing outside src/store/ talks to SQLite.',
      from: { path: '^src/', pathNot: '^src/store/' },
      to: { path: 'node_modules/better-sqlite3' },
    },
    {
      name: 'store-repositories-behind-its-door',
      severity: 'error',
      comment: 'The tables are reached through Store (store/store.ts); the lock and retention are the daemon\'s own to run.',
      from: { path: '^src/', pathNot: '^src/store/' },
      to: { path: '^src/store/', pathNot: '^src/store/(store|lock|retention)\\.ts$' },
    },
    {
      name: 'not-to-dev-deps',
      severity: 'error',
      comment: 'What src/ needs at run time must be a dependency, not a devDependency.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.build.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
