"""The test as one self-contained HTML page: clips embedded, answers kept in the browser and saved as CSV."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from audiogan.files import atomic_write_text
from audiogan.listening.design import PAGE_FILE, clip_path, folder_path, load_test


# ---------------------------------------------------------------------------- the portable page
def export_html(
    folder: str | os.PathLike, path: str | os.PathLike | None = None, title: str = "Listening test",
) -> Path:
    """The test as one HTML file: every clip embedded as a base64 WAV, no script or style from
    anywhere else, answers kept in the browser (so a reload loses nothing) and saved with a button
    as a CSV file in the format of ``answers.csv``, for :func:`import_answers`. A MUSHRA item shows
    a play button for the reference and for each clip (switching keeps the playing position, as
    BS.1534 asks) and a 0-100 slider per clip; it is answered once every slider has been set, one
    row per clip with its id in the ``clip`` column."""
    folder = folder_path(folder)
    test = load_test(folder)
    audio = {}
    for clip in test.clips:
        wav = clip_path(folder, clip["id"])
        if not wav.is_file():
            raise FileNotFoundError(f"{wav} is missing: build the test again (create_test) to write its clips.")
        audio[clip["id"]] = "data:audio/wav;base64," + base64.b64encode(wav.read_bytes()).decode("ascii")
    payload = test.public() | {"audio": audio, "columns": list(test.columns)}
    data = json.dumps(payload).replace("</", "<\\/")
    page = PAGE_TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
    path = folder / PAGE_FILE if path is None else Path(path)
    atomic_write_text(path, page)
    return path


PAGE_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; }
button { font-size: 1.05em; margin: 0.25em; padding: 0.4em 0.9em; }
audio { display: block; margin: 0.4em 0; }
.hidden { display: none; }
#progress { color: #555; }
.mushra-row { display: flex; align-items: center; gap: 0.8em; margin: 0.3em 0; }
.mushra-row input[type=range] { flex: 1; }
.mushra-row output { width: 2.5em; text-align: right; }
button.play.playing { background: #cde; }
.scale { color: #555; font-size: 0.9em; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p>Listen to each clip (as often as you like), then answer. Your answers stay in this browser
until you save them with <b>Save my answers</b>; send the saved file to whoever runs the test.
Nothing is sent anywhere.</p>
<div id="start">
  <label>Your name or code: <input id="listener" autocomplete="off"></label>
  <button id="begin">Start</button> <span id="name-error"></span>
</div>
<div id="test" class="hidden">
  <p id="progress"></p>
  <p id="question"></p>
  <div id="players"></div>
  <div id="choices"></div>
  <div id="mushra"></div>
</div>
<div id="finished" class="hidden"><p>All items answered, thank you. Please save your answers.</p></div>
<p><button id="download" class="hidden">Save my answers</button></p>
<script>
"use strict";
const TEST = __DATA__;
let listener = null;
let answers = [];  // {item, task, answer, answered_at}, in the order given
const $ = (id) => document.getElementById(id);
const storeKey = () => "audiogan-listening-" + TEST.test_id + "-" + listener;
const answered = () => new Set(answers.map((a) => a.item));

function begin() {
  const name = $("listener").value.trim();
  if (!name || /[,"\n\r]/.test(name)) {
    $("name-error").textContent = "Please type a name without commas or quotes.";
    return;
  }
  listener = name;
  try { answers = JSON.parse(localStorage.getItem(storeKey()) || "[]"); } catch (e) { answers = []; }
  $("start").classList.add("hidden");
  $("download").classList.remove("hidden");
  show();
}

function show() {
  stopAll();
  const done = answered();
  const next = TEST.items.find((it) => !done.has(it.id));
  if (!next) { $("test").classList.add("hidden"); $("finished").classList.remove("hidden"); return; }
  $("test").classList.remove("hidden");
  $("progress").textContent = "Item " + (done.size + 1) + " of " + TEST.items.length;
  $("progress").dataset.item = next.id;
  $("question").textContent = next.question;
  const players = $("players"); players.replaceChildren();
  $("choices").replaceChildren(); $("mushra").replaceChildren();
  if (next.task === "mushra") { showMushra(next); return; }
  for (const clip of next.clips) {
    const a = document.createElement("audio"); a.controls = true; a.preload = "auto"; a.src = TEST.audio[clip];
    players.appendChild(a);
  }
  const choices = $("choices"); choices.replaceChildren();
  for (const c of next.choices) {
    const b = document.createElement("button"); b.textContent = c; b.className = "choice"; b.dataset.answer = c;
    b.addEventListener("click", () => answer(next, c));
    choices.appendChild(b);
  }
}

function answer(item, value) {
  answers.push({item: item.id, task: item.task, answer: value, answered_at: new Date().toISOString()});
  keep();
}

function keep() {
  try { localStorage.setItem(storeKey(), JSON.stringify(answers)); } catch (e) { /* storage may be off */ }
  show();
}

// MUSHRA: a play button per clip (the reference and A, B, ...); switching keeps the position.
let sounds = [];
function stopAll() {
  for (const s of sounds) s.audio.pause();
  for (const b of document.querySelectorAll("button.play")) b.classList.remove("playing");
}
function play(sound) {
  const playing = sounds.find((s) => !s.audio.paused);
  const at = playing ? playing.audio.currentTime : 0;
  stopAll();
  try { sound.audio.currentTime = Math.min(at, sound.audio.duration || at); } catch (e) { /* not loaded yet */ }
  const p = sound.audio.play();
  if (p) p.catch(() => {});
  sound.button.classList.add("playing");
}
function playButton(clip, text) {
  const b = document.createElement("button");
  b.className = "play"; b.textContent = "\u25B6 " + text; b.dataset.clip = clip;
  const sound = {audio: new Audio(TEST.audio[clip]), button: b};
  sound.audio.preload = "auto";
  sound.audio.addEventListener("ended", () => b.classList.remove("playing"));
  sounds.push(sound);
  b.addEventListener("click", () => play(sound));
  return b;
}

function showMushra(item) {
  sounds = [];
  const box = $("mushra");
  const top = document.createElement("div"); top.className = "mushra-row";
  const stop = document.createElement("button"); stop.textContent = "\u25A0 Stop"; stop.id = "stop";
  stop.addEventListener("click", stopAll);
  top.append(playButton(item.reference, "Reference"), stop);
  box.appendChild(top);
  const scale = document.createElement("p"); scale.className = "scale";
  scale.textContent = "0-20 bad \u00B7 20-40 poor \u00B7 40-60 fair \u00B7 60-80 good \u00B7 80-100 excellent";
  box.appendChild(scale);
  const set = new Set();
  const next = document.createElement("button"); next.id = "mushra-next"; next.disabled = true;
  next.textContent = "Next (set every slider first)";
  const sliders = [];
  item.clips.forEach((clip, k) => {
    const row = document.createElement("div"); row.className = "mushra-row";
    const slider = document.createElement("input");
    Object.assign(slider, {type: "range", min: "0", max: "100", step: "1", value: "50", className: "rating"});
    slider.dataset.clip = clip;
    slider.setAttribute("aria-label", "rating of " + letter(k));
    const shown = document.createElement("output"); shown.textContent = "-";
    slider.addEventListener("input", () => {
      shown.textContent = slider.value; set.add(clip);
      if (set.size === item.clips.length) { next.disabled = false; next.textContent = "Next"; }
    });
    row.append(playButton(clip, letter(k)), slider, shown);
    box.appendChild(row);
    sliders.push(slider);
  });
  next.addEventListener("click", () => {
    const at = new Date().toISOString();
    for (const s of sliders) {
      answers.push({item: item.id, task: item.task, answer: String(s.value), answered_at: at, clip: s.dataset.clip});
    }
    keep();
  });
  box.appendChild(next);
}
function letter(k) {
  let name = ""; k += 1;
  while (k > 0) { const r = (k - 1) % 26; name = String.fromCharCode(65 + r) + name; k = Math.floor((k - 1) / 26); }
  return name;
}

// As answers.csv: a value a spreadsheet would run as a formula gets a leading ' (import_answers removes it).
function csvField(v) {
  v = String(v);
  if (/^[=+\-@\t\r]/.test(v) || /^'[=+\-@\t\r']/.test(v)) v = "'" + v;
  return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}

function download() {
  const rows = [TEST.columns.join(",")];
  for (const a of answers) {
    const row = {test_id: TEST.test_id, listener: listener, item: a.item, task: a.task, answer: a.answer,
                 answered_at: a.answered_at, via: "page", clip: a.clip || ""};
    rows.push(TEST.columns.map((c) => csvField(row[c])).join(","));
  }
  const blob = new Blob([rows.join("\n") + "\n"], {type: "text/csv"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "answers-" + TEST.test_id + "-" + listener + ".csv";
  document.body.appendChild(link); link.click(); link.remove();
}

$("begin").addEventListener("click", begin);
$("listener").addEventListener("keydown", (e) => { if (e.key === "Enter") begin(); });
$("download").addEventListener("click", download);
</script>
</body></html>
"""
