// /docs "Try it": send an operation's request with the token typed into the page and show
// the answer. The token stays in this page (never stored).
"use strict";
document.querySelectorAll("form.try-it").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = form.querySelector("pre.response");
    let path = form.dataset.path;
    const query = new URLSearchParams();
    form.querySelectorAll("input[data-in]").forEach((input) => {
      if (input.value === "") return;
      if (input.dataset.in === "path") {
        path = path.replace("{" + input.name + "}", encodeURIComponent(input.value));
      } else {
        query.append(input.name, input.value);
      }
    });
    const headers = {};
    const token = document.getElementById("docs-token").value.trim();
    if (token) headers["Authorization"] = "Bearer " + token;
    const options = { method: form.dataset.method, headers };
    const body = form.querySelector("textarea[name=__body]");
    if (body) {
      headers["Content-Type"] = "application/json";
      options.body = body.value;
    }
    const url = path + (query.toString() ? "?" + query : "");
    out.hidden = false;
    out.textContent = options.method + " " + url + " …";
    try {
      const response = await fetch(url, options);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      out.textContent = response.status + " " + response.statusText + "\n\n" + shown;
    } catch (error) {
      out.textContent = "request failed: " + error;
    }
  });
});
