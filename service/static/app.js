// The analysts' page. Plain JavaScript, no dependencies, no requests but to this service.
// All text from users or the model goes into the page through textContent, never innerHTML.
"use strict";

(() => {
  const PALETTE = ["#1f5fbf", "#c2410c", "#047857", "#be185d", "#6d28d9", "#0e7490", "#a16207"];
  const labelInfo = new Map(); // name -> {definition, threshold, color}

  const $ = (id) => document.getElementById(id);

  /** Create an element with a class and text content. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function humanize(label) {
    return label.replace(/_/g, " ");
  }

  function colorOf(label) {
    if (!labelInfo.has(label)) {
      labelInfo.set(label, { definition: null, threshold: null, color: PALETTE[labelInfo.size % PALETTE.length] });
    }
    return labelInfo.get(label).color;
  }

  function percent(score) {
    return `${Math.round(score * 100)}%`;
  }

  function requestHeaders() {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const key = $("api-key").value.trim();
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  /** Call the API; throw an Error carrying the service's own message on failure. */
  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: requestHeaders() });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null; // a body that is not JSON: fall back to the status below
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : `The service answered ${response.status}.`;
      throw new Error(message);
    }
    return data;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  async function loadLabels() {
    const data = await api("v1/labels");
    data.labels.forEach((info, i) => {
      labelInfo.set(info.name, {
        definition: info.definition,
        threshold: info.threshold,
        color: PALETTE[i % PALETTE.length],
      });
    });
    const model = data.model;
    $("model-line").textContent = `Model ${model.name} · version ${model.version}`;
  }

  function renderLabels(result) {
    const list = $("labels");
    list.replaceChildren();
    const names = Object.keys(result.scores).sort((a, b) => result.scores[b] - result.scores[a]);
    for (const name of names) {
      const score = result.scores[name];
      const assigned = result.labels.includes(name);
      const info = labelInfo.get(name) || {};
      const row = el("li", assigned ? "label-row assigned" : "label-row");
      row.dataset.label = name;

      const swatch = el("span", "swatch");
      swatch.style.background = colorOf(name);

      const title = el("span", "label-name", humanize(name));
      if (assigned) title.append(el("span", "badge", "assigned"));
      if (info.definition) title.append(el("span", "label-def", info.definition));

      const bar = el("div", "bar");
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-label", `${humanize(name)} score`);
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "1");
      bar.setAttribute("aria-valuenow", String(score));
      const fill = el("div", "bar-fill");
      fill.style.width = `${(score * 100).toFixed(1)}%`;
      fill.style.background = colorOf(name);
      bar.append(fill);
      if (typeof info.threshold === "number") {
        const tick = el("div", "bar-threshold");
        tick.style.left = `${(info.threshold * 100).toFixed(1)}%`;
        tick.title = `Threshold ${percent(info.threshold)}`;
        bar.append(tick);
      }

      row.append(swatch, title, bar, el("span", "score", percent(score)));
      list.append(row);
    }
    $("no-label").hidden = result.labels.length > 0;
  }

  /**
   * Show the text with the evidence of assigned labels highlighted. Offsets from the service
   * count Unicode code points, so the text is split into code points (not UTF-16 units).
   */
  function renderEvidence(text, result) {
    const chars = Array.from(text);
    const owner = new Array(chars.length).fill(null);
    const legend = $("legend");
    legend.replaceChildren();
    const evidence = result.evidence || {};
    for (const label of result.labels) {
      const terms = evidence[label] || [];
      for (const term of terms) {
        // One object per term: consecutive characters that share it form one <mark>.
        const mark = { label, term: term.term, weight: term.weight };
        for (const [start, end] of term.spans) {
          for (let i = start; i < end && i < owner.length; i += 1) {
            if (owner[i] === null) owner[i] = mark;
          }
        }
      }
      const item = el("span", "legend-item");
      const swatch = el("span", "swatch");
      swatch.style.background = colorOf(label);
      const termList = el("span", "legend-terms");
      terms.forEach((term, i) => {
        if (i > 0) termList.append("، ");
        // Show the word as written in the text; the model's normalised form is the tooltip.
        const [first] = term.spans;
        const written = first ? chars.slice(first[0], first[1]).join("") : term.term;
        const word = el("bdi", null, written);
        word.title = `${term.term} (+${term.weight.toFixed(3)})`;
        termList.append(word);
      });
      item.append(swatch, el("strong", null, humanize(label)), termList);
      legend.append(item);
    }

    const box = $("highlighted");
    box.replaceChildren();
    let i = 0;
    while (i < chars.length) {
      const current = owner[i];
      let j = i + 1;
      while (j < chars.length && owner[j] === current) j += 1;
      const piece = chars.slice(i, j).join("");
      if (current === null) {
        box.append(document.createTextNode(piece));
      } else {
        const mark = el("mark", null, piece);
        const color = colorOf(current.label);
        mark.style.backgroundColor = `${color}2e`;
        mark.style.borderBottomColor = color;
        mark.dataset.label = current.label;
        mark.title = `${humanize(current.label)}: ${current.term} (+${current.weight.toFixed(3)})`;
        box.append(mark);
      }
      i = j;
    }
  }

  function renderPassages(result) {
    const passages = result.passages || [];
    const block = $("passages-block");
    const list = $("passages");
    list.replaceChildren();
    block.hidden = passages.length < 2;
    if (block.hidden) return;
    $("passages-title").textContent = `Passages (${passages.length})`;
    for (const passage of passages) {
      const item = el("li", "passage");
      const chips = el("div", "passage-labels");
      if (passage.labels.length === 0) {
        chips.append(el("span", "chip none", "no label"));
      }
      for (const label of passage.labels) {
        const chip = el("span", "chip", `${humanize(label)} ${percent(passage.scores[label])}`);
        chip.style.background = colorOf(label);
        chips.append(chip);
      }
      const body = el("div", "passage-text", passage.text);
      body.dir = "rtl";
      body.lang = "ar";
      item.append(chips, body);
      list.append(item);
    }
  }

  async function classify() {
    const text = $("text").value;
    if (!text.trim()) {
      showError("Paste some Arabic text first.");
      return;
    }
    const button = $("classify");
    button.disabled = true;
    $("status").textContent = "Classifying…";
    showError("");
    try {
      if (labelInfo.size === 0) await loadLabels();
      // segment=true always: a short text is one passage, a long one is labelled passage by
      // passage and the page lists them.
      const data = await api("v1/classify", {
        method: "POST",
        body: JSON.stringify({ text, explain: true, segment: true }),
      });
      const result = data.results[0];
      renderLabels(result);
      renderEvidence(text, result);
      renderPassages(result);
      $("results").hidden = false;
      $("status").textContent = `Done (model version ${data.model.version}).`;
    } catch (error) {
      $("status").textContent = "";
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  }

  function clear() {
    $("text").value = "";
    $("results").hidden = true;
    $("status").textContent = "";
    showError("");
    $("text").focus();
  }

  function init() {
    const keyInput = $("api-key");
    keyInput.value = sessionStorage.getItem("narratives-api-key") || "";
    keyInput.addEventListener("change", () => sessionStorage.setItem("narratives-api-key", keyInput.value));
    $("classify").addEventListener("click", classify);
    $("clear").addEventListener("click", clear);
    $("text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) classify();
    });
    loadLabels()
      .catch((error) => {
        $("model-line").textContent = "Model information unavailable";
        showError(error.message);
      })
      .finally(() => {
        document.body.dataset.ready = "true";
      });
  }

  init();
})();
