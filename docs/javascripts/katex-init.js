/* Math: pymdownx.arithmatex writes \( ... \) and \[ ... \] into elements of class "arithmatex";
 * KaTeX (vendored in vendor/katex, so it works offline) draws them on every page load. */
(function () {
  "use strict";
  const render = () =>
    document.querySelectorAll(".arithmatex").forEach((el) =>
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      })
    );
  if (typeof document$ !== "undefined") document$.subscribe(render);
  else document.addEventListener("DOMContentLoaded", render);
})();
