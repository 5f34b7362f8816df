/**
 * Launcher Plugin API versions (Go: `api.Version`, `api.APIVersion`, types.go:872-882).
 */

/** A version, with optional build and revision (`build`/`revision` omitted when empty). */
export interface Version {
  major: number;
  minor: number;
  patch: number;
  build?: number;
  revision?: string;
}

/** The Launcher Plugin API version these types implement (the seed package is v3.5). */
export const APIVersion: Version = Object.freeze({ major: 3, minor: 5, patch: 0 });

/** Compatibility is decided on the major number only, as the Go runtime does. */
export function versionCompatible(v: Version): boolean {
  return v.major === APIVersion.major;
}

/** `major.minor.patch`, then `.build` when non-zero and `-revision` when non-empty (Go has no String()). */
export function versionString(v: Version): string {
  const build = v.build ? `.${v.build}` : "";
  const revision = v.revision ? `-${v.revision}` : "";
  return `${v.major}.${v.minor}.${v.patch}${build}${revision}`;
}
