// Status page: reads the JSON API every few seconds; Chinese first, English on request.
"use strict";

const REFRESH_MS = 5000;
const params = new URLSearchParams(location.search);
if (params.get("token")) localStorage.setItem("huxiao-token", params.get("token"));
const token = localStorage.getItem("huxiao-token");
let lang = localStorage.getItem("huxiao-lang") || "zh";

const WORDS = {
  online: ["在线", "online"], degraded: ["异常", "degraded"], offline: ["离线", "offline"],
  unknown: ["未知", "unknown"], maintenance: ["维护中", "maintenance"],
  total: ["总数", "total"], compliant: ["达标", "compliant"], not_compliant: ["未达标", "not compliant"],
  target: ["目标", "target"], last_seen: ["最后在线", "last seen"], uptime: ["在线率", "uptime"],
  no_picture: ["暂无画面", "no picture yet"], buttons_online: ["按钮在线", "buttons online"],
  link_up: ["连通", "up"], link_down: ["中断", "down"], pending: ["待送", "pending"],
  delivered: ["已送达", "delivered"], failed: ["送达失败", "failed"],
  col_time: ["时间", "Time"], col_button: ["按钮", "Button"], col_type: ["类型", "Type"], col_delivery: ["送达", "Delivery"], never: ["从未", "never"], last_test: ["上次测试", "last test"],
  panic: ["紧急报警", "panic"], test: ["测试", "test"], cancel: ["取消", "cancel"],
  col_ack: ["指挥中心确认", "acknowledged"], not_acknowledged: ["未确认", "not yet"], no_hazards: ["暂无隐患", "no open hazards"],
  high: ["高", "high"], medium: ["中", "medium"], low: ["低", "low"],
  // upstream roles: who the platform belongs to
  role_police: ["公安平台", "police platform"], role_education: ["教育平台", "education platform"],
  role_other: ["上级平台", "platform"],
  // GB/T 28181 link (the gateway as a device on the police video platform)
  gb_registered: ["已注册", "registered"], gb_not_registered: ["未注册", "not registered"],
  gb_since: ["注册于", "since"], gb_keepalive: ["心跳应答", "keepalive answered"],
  gb_clock: ["平台时钟偏差", "platform clock offset"], gb_viewers: ["实时观看", "live viewers"],
  uptime_help: ["在线率：能取到可用画面的时间占比（与联网率同一口径；维护时段不计）",
                "uptime: share of time the camera delivered a usable picture (as the networking rate counts it; maintenance not counted)"],
  // reasons
  timeout: ["超时", "timeout"], unreachable: ["无法连接", "unreachable"], protocol_error: ["应答异常", "bad answer"],
  auth_failed: ["密码错误", "wrong password"], clock_skew: ["时钟偏差", "clock skew"],
  stream_unreachable: ["视频流不通", "stream unreachable"], stream_auth_failed: ["视频流密码错误", "stream password wrong"],
  onvif_error: ["ONVIF 异常", "ONVIF error"], no_stream_uri: ["无视频流地址", "no stream URI"],
  "picture:no_signal": ["无信号", "no signal"], "picture:black": ["黑屏", "black picture"],
  "picture:frozen": ["画面冻结", "frozen picture"], "picture:blurred": ["画面模糊", "blurred"],
  "picture:covered": ["镜头遮挡", "lens covered"], "picture:color_cast": ["偏色", "colour cast"],
  "picture:too_dark": ["画面过暗", "too dark"], "picture:too_bright": ["画面过亮", "too bright"],
};

function t(key) {
  const w = WORDS[key];
  return w ? w[lang === "zh" ? 0 : 1] : key;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%"; }

function when(ts) {
  if (!ts) return t("never");
  const d = new Date(typeof ts === "number" ? ts * 1000 : ts);
  return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function splitReason(text) {
  // Reasons come as "中文 / English"; show the half for the current language.
  const parts = String(text).split(" / ");
  return parts.length === 2 ? parts[lang === "zh" ? 0 : 1] : text;
}

function renderSummary(s) {
  document.getElementById("school").textContent = s.school.name;
  document.getElementById("school-sub").textContent = [s.school.district, s.school.id].filter(Boolean).join(" · ");
  const rate = document.getElementById("rate");
  rate.textContent = pct(s.networking_rate);
  rate.className = "big " + (s.networking_rate !== null && s.networking_rate >= s.target ? "good" : "bad");
  document.getElementById("rate-target").textContent = t("target") + " " + pct(s.target);
  const compliant = document.getElementById("compliant");
  compliant.textContent = s.compliant ? t("compliant") : t("not_compliant");
  compliant.className = "big " + (s.compliant ? "good" : "bad");
  const list = document.getElementById("criteria");
  list.replaceChildren(...s.compliance.filter((c) => !c.ok).map((c) => el("li", { class: "bad" }, splitReason(c.reason))));
  const counts = document.getElementById("camera-counts");
  counts.replaceChildren(
    el("span", {}, t("total") + " " + s.cameras.total),
    ...["online", "degraded", "offline", "unknown", "maintenance"].map((k) =>
      el("span", { class: "badge " + k }, t(k) + " " + s.cameras[k])),
  );
  document.getElementById("buttons").replaceChildren(
    el("div", {}, t("buttons_online") + ": " + s.buttons.online + " / " + s.buttons.total),
    ...(s.buttons.items || []).map((b) => el("div", { class: "small" },
      b.name + " ", el("span", { class: "badge " + (b.online ? "online" : "offline") }, t(b.online ? "online" : "offline")),
      " " + t("last_test") + ": " + when(b.last_test))));
  document.getElementById("upstreams").replaceChildren(...s.upstreams.map((u) =>
    el("div", { class: u.link === "up" ? "good" : "bad" },
      upstreamLabel(u) + ": " + t(u.link === "up" ? "link_up" : "link_down") + ", " + t("pending") + " " + u.pending)));
}

function renderGbLinks(links, cameras) {
  // Each GB/T 28181 platform: registered or why not, the last keepalive it answered, its clock, who watches live.
  const names = Object.fromEntries((cameras || []).map((c) => [c.id, c.name]));
  document.getElementById("gb-links").replaceChildren(...(links || []).map((g) => {
    const parts = g.registered
      ? [t("gb_registered"), t("gb_since") + " " + when(g.registered_since), t("gb_keepalive") + " " + when(g.last_keepalive_at)]
      : [t("gb_not_registered") + (g.last_error ? ": " + g.last_error : "")];
    if (g.clock_offset_s !== null && g.clock_offset_s !== undefined) {
      parts.push(t("gb_clock") + " " + (g.clock_offset_s >= 0 ? "+" : "") + g.clock_offset_s.toFixed(1) + " s");
    }
    const watched = g.live.cameras.map((c) => (names[c.id] || c.id) + " ×" + c.viewers).join(lang === "zh" ? "、" : ", ");
    parts.push(t("gb_viewers") + " " + g.live.viewers + (watched ? " (" + watched + ")" : ""));
    return el("div", { class: "gb small " + (g.registered ? "good" : "bad"), "data-gb": g.name },
      "GB/T 28181 · " + g.name + ": " + parts.join(" · "));
  }));
}

// Faults first: on a phone the dead cameras must not be at the bottom of a long scroll.
const STATE_ORDER = { offline: 0, degraded: 1, unknown: 2, maintenance: 3, online: 4 };

function byFaultFirst(a, b) {
  // Array.prototype.sort is stable: config order is kept within a state.
  return (STATE_ORDER[a.state] ?? 2) - (STATE_ORDER[b.state] ?? 2);
}

function upstreamLabel(u) {
  // The configured name stays visible (it is what the config and logs say); the role says whose platform it is.
  const role = WORDS["role_" + u.role] ? t("role_" + u.role) : t("role_other");
  return role + " · " + u.name;
}

function renderCameras(cameras) {
  const grid = document.getElementById("cameras");
  grid.replaceChildren(...[...cameras].sort(byFaultFirst).map((c) => {
    const thumb = el("div", { class: "thumb" });
    if (c.snapshot) {
      const img = el("img", { src: c.snapshot + (c.snapshot.includes("?") ? "&" : "?") + "t=" + Date.now(),
                              alt: c.name, loading: "lazy" });
      img.onerror = () => thumb.replaceChildren(t("no_picture"));
      thumb.append(img);
    } else {
      thumb.append(t("no_picture"));
    }
    const reasons = (c.reasons || []).map(t).join(lang === "zh" ? "、" : ", ");
    const up = c.uptime || {};
    return el("article", { class: "cam " + c.state, "data-camera": c.id },
      thumb,
      el("div", { class: "body" },
        el("div", { class: "name" }, c.name + " ", el("span", { class: "badge " + c.state }, t(c.state))),
        el("div", { class: "reasons" }, reasons),
        el("div", { class: "uptime", title: t("uptime_help") }, t("uptime") + " 24h " + pct(up["24h"]) + " · 7d " + pct(up["7d"]) + " · 30d " + pct(up["30d"])),
        el("div", { class: "small" }, t("last_seen") + ": " + when(c.last_seen)),
      ));
  }));
}

function renderAlarms(alarms, summary) {
  const buttonNames = Object.fromEntries(((summary.buttons || {}).items || []).map((b) => [b.id, b.name]));
  const upstreams = Object.fromEntries((summary.upstreams || []).map((u) => [u.name, u]));
  const body = document.querySelector("#alarms tbody");
  body.replaceChildren(...alarms.map((a) => el("tr", { class: "alarm " + a.type, "data-alarm": a.id },
    el("td", { "data-label": t("col_time") }, when(a.at)),
    el("td", { "data-label": t("col_button") }, buttonNames[a.button] || a.button),
    el("td", { "data-label": t("col_type") }, el("span", { class: "kind " + a.type }, t(a.type))),
    el("td", { "data-label": t("col_delivery") }, (a.deliveries || []).map((d) =>
      (upstreams[d.upstream] ? upstreamLabel(upstreams[d.upstream]) : d.upstream) + ": " + t(d.state)).join("; ")),
    el("td", { "data-label": t("col_ack"), class: "ack" },
      a.acknowledged ? a.acknowledged.by + " · " + when(a.acknowledged.at) : t("not_acknowledged")))));
}

function renderHazards(hazards) {
  // Open hazards (隐患) the command center lists for this school: a short list, highest level first as sent.
  const list = document.getElementById("hazards");
  const items = (hazards || []).slice(0, 10);
  if (!items.length) {
    list.replaceChildren(el("li", { class: "small" }, t("no_hazards")));
    return;
  }
  list.replaceChildren(...items.map((h) => el("li", { class: "hazard " + (h.level || "") },
    h.text, h.level ? " (" + t(h.level) + ")" : "", h.at ? " · " + when(h.at) : "")));
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
  for (const node of document.querySelectorAll("[data-zh]")) node.textContent = node.dataset[lang];
}

let last = null;
async function refresh() {
  try {
    const [summary, cameras, alarms] = await Promise.all([api("/api/summary"), api("/api/cameras"), api("/api/alarms?limit=20")]);
    last = { summary, cameras, alarms };
    render();
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = String(err);
  }
}

function render() {
  applyLanguage();
  if (!last) return;
  renderSummary(last.summary);
  renderCameras(last.cameras);
  renderGbLinks(last.summary.gb28181, last.cameras);
  renderAlarms(last.alarms, last.summary);
  renderHazards(last.summary.hazards);
  document.getElementById("updated").textContent = when(Date.now() / 1000);
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("huxiao-lang", lang);
  render();
});
applyLanguage();
refresh();
setInterval(refresh, REFRESH_MS);
