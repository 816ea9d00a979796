/* Diagrams without a network. Material for MkDocs draws ```mermaid blocks with `window.mermaid`
 * and fetches mermaid from a CDN only when that is undefined. This defines it first, backed by the
 * copy in vendor/mermaid (loaded on the first diagram), so the site draws diagrams offline too.
 * Material calls initialize() once, then render(id, text) for each diagram.
 */
(function () {
  "use strict";
  const url = new URL("vendor/mermaid/mermaid.esm.min.mjs", document.currentScript.src).href;
  let options = {};
  let loading = null;
  const load = () =>
    (loading = loading || import(url).then(({ default: mermaid }) => {
      mermaid.initialize(options);
      return mermaid;
    }));
  window.mermaid = {
    initialize(config) {
      options = config;
    },
    async render(id, text) {
      return (await load()).render(id, text);
    },
  };
})();
