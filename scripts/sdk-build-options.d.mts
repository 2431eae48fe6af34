import type { BuildOptions } from 'esbuild';
export declare const sdkBuildOptions: BuildOptions;
