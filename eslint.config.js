// @ts-check
// ESLint for every JavaScript and TypeScript file of the repository, with type information:
// the TypeScript code through tsconfig.json, the console page's plain modules through console-page/tsconfig.json.
// Formatting is Prettier's (.prettierrc.json); none of the configs below has formatting rules.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'cdk.out/', 'test-artifacts/', '.safeshift/'] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Numbers in messages (counts, milliseconds, ports) are what most templates here interpolate.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `(x) => resolve(x)` as a callback and `return send(res)` to leave a void function early are idioms here;
      // a void value used inside a bigger expression is still reported.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // `() => {}` is the code base's no-op callback (a default log, an error deliberately ignored); empty functions and methods are still reported.
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      // A leading underscore marks a parameter or binding kept on purpose (an interface's argument, a field left out of a rest).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    ignores: ['console-page/**'],
    languageOptions: { globals: globals.node },
  },
  {
    // The console page runs in the browser: browser globals, no Node ones.
    files: ['console-page/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
