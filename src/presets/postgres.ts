// The preset lives in ./postgres/; this path stays for existing imports.
export * from './postgres/index.js';
