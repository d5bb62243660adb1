// Made by scripts/build.mjs at bundle time: the evidence page's files (balancer/page/) as strings.
declare module 'evidence-page:assets' {
  export const html: string;
  export const css: string;
  /** The favicon: without one the browser asks /favicon.ico, which is the gateway's JSON 404. */
  export const icon: string;
  /** balancer/page/page.ts, bundled for browsers. */
  export const script: string;
}
