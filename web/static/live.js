// Live updates over /api/v1/live. Pages work without this file; it only adds the live parts.
// Each event carries everything needed to show the change, so nothing is fetched again.

const body = document.body;
const startSeq = body.dataset.liveSeq;

const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
};

// The same format the server renders ("25 Nov 2026, 21:56 UTC"), so live and reloaded
// answers look alike.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n) => String(n).padStart(2, "0");
const when = (iso) => {
  const d = new Date(iso);
  const text = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  return el("time", { datetime: d.toISOString() }, text);
};

function progressText(p, anonymous) {
  let text = `${p.received} of ${p.invited} answered`;
  if (anonymous) {
    if (p.released) text += `, ${p.released} shown`;
  } else if (p.declined) {
    text += `, ${p.declined} declined`;
  }
  return text;
}

function ratingNode(value) {
  if (!value) return null;
  const span = el("span", { class: "rating", "aria-label": `Rating ${value} of 5` });
  span.textContent = "★".repeat(value) + "☆".repeat(5 - value) + " ";
  span.append(el("span", { class: "rating-number" }, `${value}/5`));
  return span;
}

function responseNode(r) {
  const li = el("li", { class: "response fresh" });
  if (r.id) li.dataset.responseId = r.id;
  if (r.reviewer) {
    const who = el("p", { class: "who" });
    who.append(el("strong", {}, r.reviewer.name || r.reviewer.email));
    if (r.reviewer.name) who.append(" ", el("span", { class: "muted" }, r.reviewer.email));
    li.append(who);
  }
  const rating = ratingNode(r.rating);
  if (rating) li.append(rating);
  li.append(el("p", { class: "body" }, r.body));
  const meta = el("p", { class: "meta" });
  if (r.released_at) meta.append("shown ", when(r.released_at));
  else meta.append(when(r.updated_at));
  li.append(meta);
  setTimeout(() => li.classList.remove("fresh"), 6000);
  return li;
}

// The request page.
const requestPage = document.getElementById("request");

function onRequestPage(msg) {
  if (!requestPage || requestPage.dataset.requestId !== msg.request_id) return;
  const anonymous = requestPage.dataset.anonymous === "true";
  const list = document.getElementById("responses");
  const data = msg.data;
  if (msg.type === "response.created" || msg.type === "response.updated") {
    const node = responseNode(data.response);
    const old = list.querySelector(`[data-response-id="${data.response.id}"]`);
    if (old) old.replaceWith(node); else list.append(node);
  } else if (msg.type === "responses.released") {
    for (const r of data.responses) list.append(responseNode({ ...r, released_at: data.released_at }));
  } else if (msg.type === "request.closed") {
    for (const badge of requestPage.querySelectorAll("[data-status]")) {
      badge.textContent = "closed";
      badge.className = "badge closed";
    }
    document.getElementById("close-form")?.remove();
    const notice = document.getElementById("notice");
    const withheld = data.request.progress.withheld;
    if (anonymous && withheld) {
      notice.textContent = `${withheld} answer${withheld === 1 ? "" : "s"} will never be shown: anonymous answers are only shown in groups of at least ${data.request.anonymity_k}, and the request closed before the group was complete. Nobody else can read them either.`;
      notice.hidden = false;
    } else {
      notice.hidden = true;
    }
  }
  const progress = data.progress || (data.request && data.request.progress);
  if (progress) {
    for (const node of requestPage.querySelectorAll("[data-progress]")) node.textContent = progressText(progress, anonymous);
  }
  if (msg.type === "response.created" && data.response.reviewer) {
    const status = document.querySelector(`[data-invitee="${CSS.escape(data.response.reviewer.email)}"] [data-invitee-status]`);
    if (status) status.textContent = "answered";
  }
  document.getElementById("no-responses").hidden = list.children.length > 0;
}

// The "my requests" list.
const requestList = document.querySelector('[data-live-list="requests"]');

function requestCard(r) {
  const card = el("article", { class: "request-card fresh", "data-request-id": r.id });
  const h = el("h2", { class: "h4" });
  h.append(el("a", { href: `/requests/${r.id}` }, r.question));
  const meta = el("p", { class: "meta" });
  meta.append(el("span", { class: `badge ${r.status}`, "data-status": "" }, r.status), " ");
  if (r.anonymous) meta.append(el("span", { class: "badge" }, "anonymous"), " ");
  meta.append(el("span", { class: "progress", "data-progress": "" }, progressText(r.progress, r.anonymous)));
  card.append(h, meta);
  return card;
}

function onRequestList(msg) {
  if (!requestList) return;
  const card = requestList.querySelector(`[data-request-id="${msg.request_id}"]`);
  if (msg.type === "request.created") {
    if (!card) requestList.prepend(requestCard(msg.data.request));
    document.getElementById("no-requests")?.remove();
    return;
  }
  if (!card) return;
  const anonymous = !!card.querySelector(".badge:not([data-status])");
  const progress = msg.data.progress || (msg.data.request && msg.data.request.progress);
  if (progress) card.querySelector("[data-progress]").textContent = progressText(progress, anonymous);
  if (msg.type === "request.closed") {
    const badge = card.querySelector("[data-status]");
    badge.textContent = "closed";
    badge.className = "badge closed";
  }
}

// The inbox.
const inbox = document.querySelector('[data-live-list="inbox"]');

function onInbox(msg) {
  if (!inbox) return;
  if (msg.type === "invitation.created") {
    const i = msg.data.invitation;
    const card = el("article", { class: "request-card fresh", "data-invitation-id": i.invitation_id, "data-request-id": i.request_id });
    const who = el("p", { class: "muted" });
    who.append(el("strong", {}, i.requester.name), " asks");
    const h = el("h2", { class: "h4" });
    h.append(el("a", { href: `/inbox/${i.invitation_id}` }, i.question));
    card.append(who, h);
    if (i.context) card.append(el("p", { class: "context" }, i.context));
    inbox.prepend(card);
    document.getElementById("inbox-empty")?.remove();
  } else if (msg.type === "invitation.closed") {
    inbox.querySelector(`[data-request-id="${msg.request_id}"]`)?.remove();
  }
}

// The connection, with a status indicator, backoff and resume by seq.
const statusNode = document.getElementById("live-status");
let lastSeq = startSeq === undefined ? null : Number(startSeq);
let socket = null;
let retry = 0;
let timer = null;

function setStatus(state, label) {
  if (!statusNode) return;
  statusNode.hidden = false;
  statusNode.dataset.state = state;
  statusNode.textContent = label;
  statusNode.title = label;
}

function connect() {
  clearTimeout(timer);
  if (socket || !navigator.onLine) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/api/v1/live${lastSeq === null ? "" : `?after=${lastSeq}`}`;
  setStatus("connecting", "connecting…");
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    retry = 0;
    setStatus("live", "live");
  });
  socket.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "resync") {
      location.reload();
      return;
    }
    if (lastSeq !== null && msg.seq <= lastSeq) return;
    lastSeq = msg.seq;
    onRequestPage(msg);
    onRequestList(msg);
    onInbox(msg);
  });
  socket.addEventListener("close", () => {
    socket = null;
    if (!navigator.onLine) {
      setStatus("offline", "offline");
      return;
    }
    // Exponential backoff with jitter, capped at 30 s.
    const delay = Math.min(30000, 500 * 2 ** retry) * (0.5 + Math.random() / 2);
    retry += 1;
    setStatus("reconnecting", "reconnecting…");
    timer = setTimeout(connect, delay);
  });
}

window.addEventListener("offline", () => {
  setStatus("offline", "offline");
  socket?.close();
});
window.addEventListener("online", () => {
  retry = 0;
  connect();
});

if (startSeq !== undefined) connect();

// Reviewer autocomplete on the new-request form: suggestions from the directory,
// added to the plain textarea that works without JavaScript.
const picker = document.querySelector("[data-directory-picker]");
if (picker) {
  picker.hidden = false;
  const search = picker.querySelector("input");
  const list = picker.querySelector("datalist");
  const target = document.getElementById("reviewers");
  let pending = null;
  search.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const q = search.value.trim();
      if (q.length < 2) return;
      const response = await fetch(`/api/v1/people?q=${encodeURIComponent(q)}`, { headers: { accept: "application/json" } });
      if (!response.ok) return;
      const { people } = await response.json();
      list.replaceChildren(...people.map((p) => el("option", { value: p.email }, p.name)));
    }, 150);
  });
  const add = () => {
    const email = search.value.trim();
    if (!email) return;
    const current = target.value.split(/[,;\n]/).map((s) => s.trim()).filter(Boolean);
    if (!current.includes(email)) current.push(email);
    target.value = current.join(", ");
    search.value = "";
    search.focus();
  };
  picker.querySelector("[data-add-reviewer]").addEventListener("click", add);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      add();
    }
  });
}
