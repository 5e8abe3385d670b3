// Site fixes for the course website (loaded deferred on every page by course_site.py).
(function () {
  "use strict";

  // 1. Phone navigation. pydata-sphinx-theme 0.17 binds the sidebar dialogs to the FIRST
  //    `.primary-toggle` / `.secondary-toggle` on the page, and sphinx-book-theme renders a
  //    second, visible one in the article header, so the visible button did nothing
  //    (pydata-sphinx-theme #2451, sphinx-book-theme #988). Forward clicks on every other
  //    toggle to the first one, which carries the themes' handlers.
  function forwardToggles(selector) {
    var toggles = document.querySelectorAll(selector);
    if (toggles.length < 2) return;
    var bound = toggles[0];
    Array.prototype.slice.call(toggles, 1).forEach(function (toggle) {
      toggle.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopImmediatePropagation();
        toggle.blur();
        bound.click();
      }, true);
    });
  }

  // 2. Slider names. An ipywidgets slider handle has no accessible name, and its value is
  //    the frame index. Name it from the slider's `course-slider-name-<name>` class (or its
  //    visible label) and announce the readout: "temperature 4.5".
  function sliderName(widget) {
    var named = Array.prototype.filter.call(widget.classList, function (c) {
      return c.indexOf("course-slider-name-") === 0;
    })[0];
    if (named) return named.slice("course-slider-name-".length).replace(/_/g, " ");
    var label = widget.querySelector(".widget-label");
    return label ? label.textContent.trim() : "slider";
  }

  function nameSlider(handle) {
    var widget = handle.closest(".widget-slider");
    if (!widget) return;
    var update = function () {
      // Recomputed each time: ipywidgets adds the slider's classes after drawing it.
      var name = sliderName(widget);
      var readout = widget.querySelector(".widget-readout");
      if (handle.getAttribute("aria-label") !== name) handle.setAttribute("aria-label", name);
      if (!readout) return;
      var value = name + " " + readout.textContent.trim();
      if (handle.getAttribute("aria-valuetext") !== value) handle.setAttribute("aria-valuetext", value);
    };
    update();
    if (handle.dataset.courseNamed) return;
    handle.dataset.courseNamed = "1";
    var observer = new MutationObserver(update);
    observer.observe(handle, { attributes: true, attributeFilter: ["aria-valuetext", "aria-label"] });
    observer.observe(widget, { attributes: true, attributeFilter: ["class"] });
    var readout = widget.querySelector(".widget-readout");
    if (readout) observer.observe(readout, { childList: true, characterData: true, subtree: true });
  }

  function watchSliders() {
    var scan = function () {
      document.querySelectorAll(".noUi-handle").forEach(nameSlider);
    };
    scan();
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  }

  // 3. Search snippets. Sphinx builds them from each page's text, where formulas are still
  //    TeX source (\(\sqrt{d_k}\)). Turn formulas into plain text before the snippet is cut.
  var SYMBOLS = {
    cdot: "·", times: "×", top: "ᵀ", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠",
    approx: "≈", infty: "∞", sum: "Σ", prod: "Π", in: "∈", to: "→", rightarrow: "→",
    ldots: "…", dots: "…", cdots: "⋯", alpha: "α", beta: "β", gamma: "γ", delta: "δ",
    epsilon: "ε", theta: "θ", lambda: "λ", mu: "μ", pi: "π", sigma: "σ", tau: "τ", phi: "φ",
    omega: "ω", Delta: "Δ", Sigma: "Σ", odot: "⊙", otimes: "⊗", mid: "|", quad: " ", qquad: " ",
    left: "", right: "", big: "", Big: "", bigl: "", bigr: "", displaystyle: "", log: "log",
    exp: "exp", max: "max", min: "min", sin: "sin", cos: "cos", softmax: "softmax"
  };
  function plainMath(tex) {
    var s = tex.trim().replace(/^(\\\(|\\\[|\$\$?)/, "").replace(/(\\\)|\\\]|\$\$?)$/, "");
    for (var i = 0; i < 3; i++) {  // nested groups, innermost first
      s = s.replace(/\\(?:operatorname|mathrm|text|textrm|mathbf|mathit|boldsymbol|mathcal|hat|tilde|bar)\s*\{([^{}]*)\}/g, "$1");
      s = s.replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)");
      s = s.replace(/\\sqrt\s*\{([^{}]*)\}/g, "√($1)");
    }
    s = s.replace(/\\\\/g, "; ").replace(/&/g, "").replace(/\\[,;:! ]/g, " ");
    s = s.replace(/\\([a-zA-Z]+)/g, function (m, name) {
      return Object.prototype.hasOwnProperty.call(SYMBOLS, name) ? SYMBOLS[name] : name;
    });
    return s.replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  }
  window.courseSitePlainMath = plainMath;
  if (window.Search && typeof window.Search.htmlToText === "function") {
    var htmlToText = window.Search.htmlToText;
    window.Search.htmlToText = function (htmlString, anchor) {
      var doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math").forEach(function (el) { el.textContent = " " + plainMath(el.textContent) + " "; });
      return htmlToText(doc.documentElement.outerHTML, anchor);
    };
  }

  // 4. Names the themes leave out or get wrong (axe-core): the search button's label must
  //    contain its visible text; the sidebar's expand toggles need a name.
  function fixNames() {
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (button) {
      button.removeAttribute("aria-label");  // named by its visible text, "Search … Ctrl+K"
    });
    document.querySelectorAll(".bd-sidebar-primary details > summary").forEach(function (summary) {
      var link = summary.parentElement.parentElement.querySelector(":scope > a");
      if (!summary.getAttribute("aria-label"))
        summary.setAttribute("aria-label", "Sections of " + (link ? link.textContent.trim() : "this chapter"));
    });
  }

  // 5. Formulas are not tab stops (MathJax inTabOrder: false), except a display formula too
  //    wide for the screen: it scrolls sideways, so the keyboard must be able to reach it.
  function focusWideFormulas() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (math) {
      if (math.scrollWidth > math.clientWidth + 1) math.setAttribute("tabindex", "0");
      else if (math.getAttribute("tabindex") === "0") math.setAttribute("tabindex", "-1");
    });
  }
  function watchFormulas() {
    // Formulas are typeset when the site is built (tools/site_assets/prerender_math.js);
    // if MathJax runs in the page instead, wait for it.
    var mathjax = window.MathJax;
    if (mathjax && mathjax.startup && mathjax.startup.promise) mathjax.startup.promise.then(focusWideFormulas);
    else focusWideFormulas();
    window.addEventListener("resize", focusWideFormulas);
  }

  function ready(callback) {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  }

  ready(function () {
    forwardToggles(".primary-toggle");
    forwardToggles(".secondary-toggle");
    fixNames();
    if (document.querySelector(".math")) watchFormulas();
    if (document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]')) watchSliders();
  });
})();
