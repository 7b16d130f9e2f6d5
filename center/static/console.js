// The duty officer's console: live alarms over server-sent events, one-click acknowledgement, the city table.
// Everything comes from this center (no internet at run time); the alarm sound is made here with Web Audio.
"use strict";

const T = {
  zh: { panic: "紧急报警", test: "测试报警", cancel: "取消报警", ack: "确认接警", acked: "已确认", by: "确认人",
        pressed: "按下", silent: "失联", noReport: "从未上报", yes: "是", no: "否", due: "整改期限",
        overdueTag: "已超期", buttonOffline: "报警按钮离线", linkDown: "链路中断", feedUp: "实时连接正常",
        feedDown: "实时连接中断", city: "全市", target: "目标", lang: "English", none: "无" },
  en: { panic: "PANIC", test: "Test", cancel: "Cancelled", ack: "Acknowledge", acked: "Acknowledged", by: "by",
        pressed: "pressed", silent: "silent", noReport: "never reported", yes: "yes", no: "no", due: "due",
        overdueTag: "OVERDUE", buttonOffline: "alarm button offline", linkDown: "link down", feedUp: "live feed up",
        feedDown: "live feed down", city: "City", target: "target", lang: "中文", none: "none" },
};
let lang = localStorage.getItem("huxiao-center-lang") || "zh";
const alarms = new Map();      // id -> row
const schools = new Map();     // id -> row
const notices = [];            // button offline and other failure events, newest first
let city = null;
let hazards = [];
const t = (key) => T[lang][key];
const token = () => document.getElementById("token").value.trim();
const headers = () => (token() ? { Authorization: "Bearer " + token() } : {});
const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const when = (iso) => (iso ? new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB") : "—");

let audio = null;
function siren() {
  // Two alternating tones for 1.2 s: heard over a busy room, and it needs no sound file.
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "square";
    for (let i = 0; i < 6; i++) osc.frequency.setValueAtTime(i % 2 ? 660 : 880, audio.currentTime + i * 0.2);
    gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 1.2);
    window.huxiaoSirens = (window.huxiaoSirens || 0) + 1;
  } catch (e) { /* no audio device: the red row still shows */ }
}

async function getJSON(path) {
  const answer = await fetch(path, { headers: headers() });
  if (!answer.ok) throw new Error(path + ": " + answer.status);
  return answer.json();
}

async function acknowledge(id) {
  const by = localStorage.getItem("huxiao-center-name") || "";
  const answer = await fetch(`/api/alarms/${encodeURIComponent(id)}/ack`, {
    method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
    body: JSON.stringify(by ? { by } : {}),
  });
  if (answer.ok) { const row = await answer.json(); alarms.set(row.id, row); renderAlarms(); }
}

function renderAlarms() {
  const list = document.getElementById("alarms");
  const rows = [...alarms.values()].sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)));
  document.getElementById("no-alarms").hidden = rows.length > 0;
  list.innerHTML = rows.map((a) => {
    const cls = ["alarm", a.type === "test" ? "test" : "", a.acknowledged ? "acked" : ""].join(" ");
    const pictures = (a.pictures || []).map((p) => `<img alt="${esc(p.camera.name)}" title="${esc(p.camera.name)}" src="${esc(p.url)}${token() ? "?token=" + encodeURIComponent(token()) : ""}">`).join("");
    const state = a.acknowledged
      ? `<span class="ackd">${t("acked")} · ${t("by")} ${esc(a.acknowledged.by)} · ${when(a.acknowledged.at)}</span>`
      : `<button type="button" class="ack" data-id="${esc(a.id)}">${t("ack")}</button>`;
    return `<li class="${cls}" data-id="${esc(a.id)}"><div class="what">${t(a.type) || esc(a.type)} · ${esc(a.school.name)} · ${esc(a.button.location || a.button.name)}</div>
      <div class="when">${esc(a.school.district)} · ${esc(a.button.name)} · ${t("pressed")} ${when(a.pressed_at)}</div>
      <div class="pictures">${pictures}</div>${state}</li>`;
  }).join("");
  list.querySelectorAll("button.ack").forEach((b) => b.addEventListener("click", () => acknowledge(b.dataset.id)));
}

function rateCell(value, target) {
  if (value === null || value === undefined) return `<td>—</td>`;
  const cls = value + 1e-9 >= target ? "meets" : "below";
  return `<td class="${cls}">${pct(value)}</td>`;
}

function renderCity() {
  if (!city) return;
  const target = city.target;
  const rows = [...city.by_district, { ...city, district: t("city") }];
  document.querySelector("#city tbody").innerHTML = rows.map((d) => `<tr data-district="${esc(d.district)}">
    <td>${esc(d.district)}</td><td>${d.schools}</td><td>${d.reporting}</td>
    ${rateCell(d.networking_rate, target.networking_rate)}${rateCell(d.compliant_share, target.compliant_share)}</tr>`).join("")
    + `<tr class="target"><td>${t("target")}</td><td></td><td></td><td>${pct(target.networking_rate)}</td><td>${pct(target.compliant_share)}</td></tr>`;
}

function renderSchools() {
  const rows = [...schools.values()];
  document.querySelector("#schools tbody").innerHTML = rows.map((s) => `<tr data-school="${esc(s.id)}">
    <td>${esc(s.name)}</td><td>${esc(s.district)}</td>
    <td class="${s.reporting ? "meets" : "below"}">${s.reporting ? t("yes") : (s.last_report_at ? t("silent") : t("noReport"))}</td>
    <td>${pct(s.networking_rate)}</td><td>${s.compliant === true ? t("yes") : t("no")}</td>
    <td class="${s.overdue_hazards ? "overdue" : ""}">${s.open_hazards}</td></tr>`).join("");
  const problems = [];
  for (const s of rows) {
    if (!s.reporting) problems.push(`<li class="silent below">${esc(s.name)}: ${s.last_report_at ? t("silent") + " · " + when(s.last_report_at) : t("noReport")}</li>`);
    if (s.reporting && s.buttons && s.buttons.total !== null && s.buttons.online < s.buttons.total)
      problems.push(`<li class="below">${esc(s.name)}: ${t("buttonOffline")} (${s.buttons.online}/${s.buttons.total})</li>`);
    for (const link of s.links || []) if (s.reporting && link.link === "down") problems.push(`<li class="below">${esc(s.name)}: ${esc(link.name)} ${t("linkDown")}</li>`);
  }
  for (const n of notices.slice(0, 20)) {
    const school = n.school ? n.school.name : "";
    problems.push(`<li>${esc(school)}: ${esc(n.type)} ${n.button ? esc(n.button.name || n.button.id) : ""} · ${when(n.at)}</li>`);
  }
  document.getElementById("problems").innerHTML = problems.join("") || `<li class="empty">${t("none")}</li>`;
}

function renderHazards() {
  const now = Date.now();
  const names = new Map([...schools.values()].map((s) => [s.id, s.name]));
  const open = hazards.filter((h) => !h.closed_at);
  document.getElementById("hazards").innerHTML = open.map((h) => {
    const overdue = new Date(h.deadline).getTime() < now;
    return `<li class="${overdue ? "overdue" : ""}">${esc(names.get(h.school_id) || h.school_id)}: ${esc(h.detail)} · ${t("due")} ${when(h.deadline)}${overdue ? " · " + t("overdueTag") : ""}</li>`;
  }).join("") || `<li class="empty">${t("none")}</li>`;
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = el.dataset[lang]; });
  document.getElementById("lang").textContent = t("lang");
  setFeed(feedUp);
  renderAlarms(); renderCity(); renderSchools(); renderHazards();
}

let feedUp = false;
function setFeed(up) {
  feedUp = up;
  const el = document.getElementById("feed");
  el.className = "feed " + (up ? "up" : "down");
  el.textContent = up ? t("feedUp") : t("feedDown");
}

async function reload() {
  const [rows, schoolRows, cityRow, hazardRows] = await Promise.all([
    getJSON("/api/alarms?limit=200"), getJSON("/api/schools"), getJSON("/api/city"), getJSON("/api/hazards?open=1"),
  ]);
  alarms.clear(); rows.forEach((a) => alarms.set(a.id, a));
  schools.clear(); schoolRows.forEach((s) => schools.set(s.id, s));
  city = cityRow; hazards = hazardRows;
  renderAlarms(); renderCity(); renderSchools(); renderHazards();
}

let source = null;
let cityTimer = null;
function connect() {
  if (source) source.close();
  source = new EventSource("/events" + (token() ? "?token=" + encodeURIComponent(token()) : ""));
  source.onopen = () => { setFeed(true); reload().catch(() => {}); };
  source.onerror = () => setFeed(false);  // EventSource reconnects by itself; onopen reloads the lists
  source.addEventListener("alarm", (e) => {
    const row = JSON.parse(e.data);
    const isNew = !alarms.has(row.id);
    alarms.set(row.id, row); renderAlarms();
    if (isNew && row.type === "panic") siren();
  });
  source.addEventListener("ack", (e) => { const row = JSON.parse(e.data); alarms.set(row.id, row); renderAlarms(); });
  source.addEventListener("school", (e) => {
    const row = JSON.parse(e.data); schools.set(row.id, row); renderSchools();
    // The city table follows the schools; fetched at most twice a second however many reports arrive.
    if (!cityTimer) cityTimer = setTimeout(async () => {
      cityTimer = null;
      try { city = await getJSON("/api/city"); hazards = await getJSON("/api/hazards?open=1"); renderCity(); renderHazards(); } catch (err) { /* next event retries */ }
    }, 500);
  });
  source.addEventListener("notice", (e) => { notices.unshift(JSON.parse(e.data)); renderSchools(); });
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("huxiao-center-lang", lang); translate();
});
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("huxiao-center-token") || "";
tokenInput.addEventListener("change", () => { sessionStorage.setItem("huxiao-center-token", token()); connect(); });
// A school falls silent by the clock, not by an event: the lists are read again every 30 s.
setInterval(() => reload().catch(() => {}), 30000);
translate();
connect();
