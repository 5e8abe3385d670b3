// Typeset every formula of the built site ahead of time, so no page loads MathJax.
//
//   node tools/site_assets/prerender_math.js _build/html
//
// Replaces the TeX in Sphinx's <span|div class="math notranslate nohighlight"> with MathJax 3's
// SVG output (glyphs shared once per page) plus hidden MathML that screen readers read
// (assistive-mml), and puts MathJax's small stylesheet in the page's <head>. Pages keep the
// `math` class, so nothing else changes, and lose the MathJax scripts (0.8 MB a page). Called by book/_ext/course_site.py after a build;
// prints one line per page it changed.
"use strict";
const fs = require("fs");
const path = require("path");
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AssistiveMmlHandler } = require("mathjax-full/js/a11y/assistive-mml.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");

// Sphinx's MathJax configuration and loader: not needed once every formula is typeset.
const MATHJAX_SCRIPTS = /<script>window\.MathJax = [^<]*<\/script>\s*|<script[^>]*src="[^"]*vendor\/mathjax\/[^"]*"[^>]*><\/script>\s*/g;
const MATH = /<(span|div) class="math notranslate nohighlight"([^>]*)>([\s\S]*?)<\/\1>/g;
const EQNO = /^\s*(<span class="eqno">[\s\S]*?<\/a><\/span>)/;

const adaptor = liteAdaptor();
AssistiveMmlHandler(RegisterHTMLHandler(adaptor));
const tex = new TeX({ packages: AllPackages.filter((name) => name !== "bussproofs") });
const svg = new SVG({ fontCache: "global" });
const doc = mathjax.document("", { InputJax: tex, OutputJax: svg });

function unescapeHtml(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&amp;/g, "&");
}

function stripDelimiters(texSource, display) {
  let s = texSource.trim();
  if (display && s.startsWith("\\[") && s.endsWith("\\]")) return s.slice(2, -2);
  if (!display && s.startsWith("\\(") && s.endsWith("\\)")) return s.slice(2, -2);
  if (s.startsWith("$$") && s.endsWith("$$")) return s.slice(2, -2);
  return s;  // e.g. \begin{align}...\end{align} from MyST's amsmath
}

function typesetPage(html) {
  svg.clearFontCache();
  let count = 0;
  const errors = [];
  const out = html.replace(MATH, (whole, tag, attributes, body) => {
    const display = tag === "div";
    let prefix = "";
    const eqno = body.match(EQNO);
    if (eqno) { prefix = eqno[1]; body = body.slice(eqno[0].length); }
    const source = stripDelimiters(unescapeHtml(body), display);
    const node = doc.convert(source, { display, em: 16, ex: 8, containerWidth: 80 * 16 });
    if (adaptor.outerHTML(node).includes("data-mjx-error")) errors.push(source);
    count += 1;
    return `<${tag} class="math notranslate nohighlight"${attributes}>${prefix}${adaptor.outerHTML(node)}</${tag}>`;
  });
  if (!count) return { html: out.replace(MATHJAX_SCRIPTS, ""), count, errors };
  const cache = svg.pageElements(doc);
  const style = adaptor.textContent(svg.styleSheet(doc));
  const head = `<style id="MJX-SVG-styles">${style}</style>`;
  const page = out.replace(MATHJAX_SCRIPTS, "").replace("</head>", `${head}\n</head>`)
    .replace(/<\/body>/, `${cache ? adaptor.outerHTML(cache) : ""}\n</body>`);
  return { html: page, count, errors };
}

function* htmlFiles(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && !entry.name.startsWith("_") && !entry.name.startsWith("@")) yield* htmlFiles(full);
    else if (entry.isFile() && entry.name.endsWith(".html")) yield full;
  }
}

const site = process.argv[2];
if (!site) { console.error("usage: node prerender_math.js SITE_DIR"); process.exit(2); }
let failed = false;
for (const file of htmlFiles(site)) {
  const html = fs.readFileSync(file, "utf8");
  if (html.includes('id="MJX-SVG-styles"')) continue;  // already typeset
  const result = typesetPage(html);
  if (result.html === html) continue;
  fs.writeFileSync(file, result.html);
  if (result.count) console.log(`${path.relative(site, file)}: ${result.count} formulas`);
  for (const source of result.errors) { console.error(`  TeX error in: ${source}`); failed = true; }
}
process.exit(failed ? 1 : 0);
