// The catalog search page: debounced text search, photo upload, "more like this". No build step, nothing fetched
// from outside this server.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const query = $("query"), photo = $("photo"), drop = $("drop"), status = $("status");
  const results = $("results"), title = $("results-title");
  let timer = null, seq = 0;

  function setStatus(text) { status.textContent = text || ""; }

  async function getJSON(url, options) {
    const response = await fetch(url, options);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new Error((body && body.error) || ("HTTP " + response.status));
    return body;
  }

  function card(item) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.productId = item.product_id;
    el.dataset.category = item.category || "";
    el.dataset.subcategory = item.subcategory || "";
    if (item.image_url) {
      const img = document.createElement("img");
      img.src = item.image_url; img.alt = item.text || item.product_id; img.loading = "lazy";
      el.appendChild(img);
    }
    const body = document.createElement("div");
    body.className = "body";
    const text = document.createElement("div"); text.textContent = item.text || item.product_id;
    const meta = document.createElement("div"); meta.className = "meta";
    meta.textContent = [item.category, item.subcategory].filter(Boolean).join(" / ");
    const score = document.createElement("div"); score.className = "score";
    score.textContent = "score " + Number(item.score).toFixed(3);
    body.append(text, meta, score);
    el.appendChild(body);
    el.addEventListener("click", () => moreLike(item.product_id));
    return el;
  }

  function show(heading, items) {
    title.textContent = heading;
    results.replaceChildren(...items.map(card));
    results.dataset.state = "ready";
  }

  async function search(text) {
    const mine = ++seq;
    if (!text.trim()) { results.replaceChildren(); title.textContent = ""; setStatus(""); return; }
    try {
      const body = await getJSON("/api/search?q=" + encodeURIComponent(text));
      if (mine !== seq) return;  // a newer query has been typed
      setStatus("");
      show('Results for "' + body.query + '"', body.results);
    } catch (e) { if (mine === seq) setStatus(e.message); }
  }

  async function moreLike(productId) {
    const mine = ++seq;
    try {
      const body = await getJSON("/api/similar/" + encodeURIComponent(productId));
      if (mine !== seq) return;
      setStatus("");
      show("More like " + (body.product.text || productId), body.results);
      window.scrollTo(0, 0);
    } catch (e) { setStatus(e.message); }
  }

  function bars(head, ranked) {
    const box = document.createElement("div");
    box.className = "classes"; box.dataset.head = head;
    const h = document.createElement("h3"); h.textContent = head; box.appendChild(h);
    ranked.slice(0, 3).forEach((c, i) => {
      const row = document.createElement("div"); row.className = "bar";
      if (i === 0) row.dataset.top = c.name;
      const fill = document.createElement("span"); fill.className = "fill";
      fill.style.width = Math.max(2, Math.round(c.probability * 120)) + "px";
      const label = document.createElement("span");
      label.textContent = c.name + " " + (100 * c.probability).toFixed(1) + "%";
      row.append(fill, label); box.appendChild(row);
    });
    return box;
  }

  async function upload(file) {
    if (!file) return;
    const mine = ++seq;
    const form = new FormData(); form.append("file", file);
    $("photo-preview").src = URL.createObjectURL(file);
    setStatus("Looking at the photo...");
    try {
      const body = await getJSON("/api/photo", { method: "POST", body: form });
      if (mine !== seq) return;
      setStatus("");
      $("photo-panel").hidden = false;
      $("caption").textContent = body.caption ? "\u201c" + body.caption + "\u201d" : "";
      $("classes").replaceChildren(...Object.entries(body.classes).map(([head, ranked]) => bars(head, ranked)));
      show("Products like this photo", body.results);
    } catch (e) { if (mine === seq) { setStatus(e.message); $("photo-panel").hidden = true; } }
  }

  query.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(query.value), 250);
  });
  photo.addEventListener("change", () => upload(photo.files[0]));
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => upload(e.dataTransfer.files[0]));
})();
