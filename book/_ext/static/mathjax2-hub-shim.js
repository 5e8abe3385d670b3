// The ipywidgets html-manager 1.x typesets widget labels with MathJax 2's
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`. The site runs MathJax 3,
// which has no `Hub`, so that call would throw (ipywidgets #3829). Whenever the
// global MathJax object is (re)assigned, give it a `Hub.Queue` that forwards
// typesetting to MathJax 3's `typesetPromise`.
(function () {
  "use strict";
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (!Array.isArray(job) || job[0] !== "Typeset") continue;
        var element = job[2];
        var mathjax = window.MathJax;
        if (mathjax && mathjax.startup && mathjax.startup.promise) {
          mathjax.startup.promise.then(function () {
            return mathjax.typesetPromise(element ? [element] : undefined);
          });
        }
      }
    },
  };
  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) {
      try { Object.defineProperty(value, "Hub", { value: hub, enumerable: false, configurable: true }); }
      catch (e) { /* a frozen object: leave it */ }
    }
    return value;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
})();
