// esbuild options for the browser SDK bundle, shared by the build and the e2e tests.
export const sdkBuildOptions = {
  entryPoints: ['client/index.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  sourcemap: true,
  outfile: 'dist/sdk/herald.js',
  logLevel: 'warning',
};
