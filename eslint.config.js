// Lint setup. The one project rule that matters most: nothing outside src/crypto may reach a crypto
// implementation directly; everything goes through the provider (see SECURITY.md, "crypto boundary").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const cryptoModules = ['crypto', 'node:crypto', 'pkcs11js', '@peculiar/webcrypto'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          paths: cryptoModules.map((name) => ({
            name,
            message: 'Crypto lives behind the provider in src/crypto. Import from src/crypto instead.',
          })),
        },
      ],
    },
  },
  {
    files: ['src/crypto/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
