// typescript-eslint's recommended and type-checked rules over every source; `npm run lint` also runs tsc.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['**/dist/', 'build/', 'node_modules/', '.pulumi/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A variable declared early so a signal handler can reach it, and assigned once later, stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `const { a: _a, ...rest } = x` is how a field is left out of a copy; tsc checks unused parameters.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true, argsIgnorePattern: '^_' }],
    },
  },
  {
    // The evidence page's script runs in a browser (its own tsconfig there gives it the DOM's types).
    files: ['balancer/page/**/*.ts'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Stand-ins implement async interfaces without awaiting anything; `async` still turns their throws into rejections.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JavaScript (the build script, this file, a CommonJS loader) is outside tsconfig's program.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // A CommonJS file imports with require().
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
