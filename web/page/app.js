// The page: loads vae_web.wasm (vae-core's decoder, web/src/lib.rs) and a model file,
// and draws with it. Every pixel comes from the module; this file only asks and paints.
//
// Query parameters: `model=URL` loads that file instead of the list's; `check` runs the
// drawings of tests/tests/browser.rs and writes what the canvases hold, read back, as
// JSON into <pre id="check">, then sets the title to "check done"; `timing` times the
// default model's files only (web/browser/drive.mjs, for scripts/bench-web.sh) and
// reports the same way.

const SIDE = 28;
const PIXELS = SIDE * SIDE;
/// The module's result codes (web/src/lib.rs: NO_DIGIT, FAILED).
const NO_DIGIT = -1;
const FAILED = -2;
/// The model whose latent plane the page draws.
const PLANE_MODEL = "latent2";
/// The plane spans [-PLANE_RANGE, PLANE_RANGE] on each axis.
const PLANE_RANGE = 3;
const MORPH_STEPS = 8;
/// Digits per timing round, and rounds after one round of warm-up (the median is shown).
const TIMING_DIGITS = 200;
const TIMING_ROUNDS = 5;

/// One instance of the module with one model loaded.
class Decoder {
  static async create() {
    const { instance } = await WebAssembly.instantiateStreaming(fetch("vae_web.wasm"));
    return new Decoder(instance.exports);
  }

  constructor(exports) {
    this.x = exports;
    this.header = null;
  }

  text() {
    const bytes = new Uint8Array(this.x.memory.buffer, this.x.vae_text(), this.x.vae_text_len());
    return new TextDecoder().decode(bytes);
  }

  /// Parses `bytes` with vae-core's parser; throws an Error with the parser's message.
  load(bytes) {
    this.header = null;
    const at = this.x.vae_file_buffer(bytes.length);
    if (at === 0) throw new Error(this.text());
    new Uint8Array(this.x.memory.buffer, at, bytes.length).set(bytes);
    if (this.x.vae_load(bytes.length) !== 0) throw new Error(this.text());
    if (this.x.vae_describe() !== 0) throw new Error(this.text());
    this.header = JSON.parse(this.text());
  }

  /// The pixels of the drawing call that returned `code`.
  pixels(code) {
    if (code === FAILED) throw new Error(this.text());
    return new Uint8Array(this.x.memory.buffer, this.x.vae_pixels(), PIXELS).slice();
  }

  generate(seed, digit, temperature) {
    return this.pixels(this.x.vae_generate(BigInt(seed), digit ?? NO_DIGIT, temperature));
  }

  /// Decodes latent code `z` (rounded to f32 on the way in).
  decode(z, digit) {
    new Float32Array(this.x.memory.buffer, this.x.vae_latent_buffer(), z.length).set(z);
    return this.pixels(this.x.vae_decode(digit ?? NO_DIGIT));
  }

  morph(from, to, step, steps) {
    const code = this.x.vae_morph(
      BigInt(from.seed), from.digit ?? NO_DIGIT, BigInt(to.seed), to.digit ?? NO_DIGIT, step, steps);
    return this.pixels(code);
  }

  /// The digits the page offers: the model's classes, at most ten (0 unconditional).
  get digits() {
    return Math.min(this.header.classes, 10);
  }

  /// Microseconds per digit: TIMING_ROUNDS rounds of TIMING_DIGITS digits (seeds 0, 1, ...,
  /// digit seed % classes, temperature 1) after a round of warm-up (the browser compiles
  /// the hot code again, optimized, once it has run), the median round. The host's
  /// figure, vae-core/examples/time_digits.rs, times the same calls the same way.
  timePerDigit() {
    const rounds = [];
    for (let r = -1; r < TIMING_ROUNDS; r++) {
      const start = performance.now();
      for (let k = 0; k < TIMING_DIGITS; k++) {
        const classes = this.header.classes;
        this.x.vae_generate(BigInt(k), classes > 0 ? k % classes : NO_DIGIT, 1);
      }
      if (r >= 0) rounds.push((performance.now() - start) * 1000 / TIMING_DIGITS);
    }
    rounds.sort((a, b) => a - b);
    return rounds[Math.floor(rounds.length / 2)];
  }
}

/// Where `paint` puts pixel `p` of image `i`: the top left corner of its block.
function blockAt(i, p, columns, scale) {
  const x = ((i % columns) * SIDE + (p % SIDE)) * scale;
  const y = (Math.floor(i / columns) * SIDE + Math.floor(p / SIDE)) * scale;
  return [x, y];
}

/// Paints `images` (784 grey levels each) on `canvas`, `columns` to a row, each pixel a
/// `scale` x `scale` block.
function paint(canvas, images, columns, scale) {
  const rows = Math.max(1, Math.ceil(images.length / columns));
  canvas.width = columns * SIDE * scale;
  canvas.height = rows * SIDE * scale;
  const context = canvas.getContext("2d");
  const out = context.createImageData(canvas.width, canvas.height);
  images.forEach((image, i) => {
    for (let p = 0; p < PIXELS; p++) {
      const [x0, y0] = blockAt(i, p, columns, scale);
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const at = 4 * ((y0 + dy) * canvas.width + x0 + dx);
          out.data[at] = out.data[at + 1] = out.data[at + 2] = image[p];
          out.data[at + 3] = 255;
        }
      }
    }
  });
  context.putImageData(out, 0, 0);
}

/// The `count` images `paint` put on `canvas`, read back from the canvas.
function readBack(canvas, count, columns) {
  const scale = canvas.width / (columns * SIDE);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const images = [];
  for (let i = 0; i < count; i++) {
    const image = new Uint8Array(PIXELS);
    for (let p = 0; p < PIXELS; p++) {
      const [x, y] = blockAt(i, p, columns, scale);
      image[p] = data[4 * (y * canvas.width + x)];
    }
    images.push(image);
  }
  return images;
}

const hex = (image) => Array.from(image, (v) => v.toString(16).padStart(2, "0")).join("");
const $ = (id) => document.getElementById(id);
const int = (id) => Math.max(0, Math.floor(Number($(id).value) || 0));
const number = new Intl.NumberFormat("en-US");

/// What the page shows, and the decoders that draw it.
const page = {
  models: [],
  main: null,
  plane: null,
  temperature: 1,
  digit: 7,
  lastDraws: [],
};

/// Shows `message` as the page's error (null: none) and disables drawing while there is one.
function showError(message) {
  const box = $("error");
  box.hidden = message === null;
  box.textContent = message === null ? "" : `This model file cannot be used: ${message}`;
  for (const id of ["digit", "grid", "morph"]) {
    $(id).classList.toggle("disabled", message !== null);
  }
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

function describe(name, header) {
  const hidden = header.hidden.length ? header.hidden.join("-") : "none";
  const classes = header.classes ? `${header.classes} classes` : "unconditional";
  return `${name}: ${header.precision} weights · format version ${header.version} · latent ${header.latent} · ${classes} · hidden ${hidden} (${header.activation}) · ${number.format(header.parameters)} parameters · ${number.format(header.macs)} multiply-accumulates per digit · ${number.format(header.bytes)} bytes`;
}

/// Loads `bytes` (named `name`) into the main decoder and draws everything again; a
/// file the parser refuses shows its error.
function useModel(name, bytes) {
  try {
    page.main.load(bytes);
  } catch (err) {
    $("header").textContent = `${name}: not loaded`;
    $("timing").textContent = "";
    showError(err.message);
    return;
  }
  showError(null);
  $("header").textContent = describe(name, page.main.header);
  const micros = page.main.timePerDigit();
  $("timing").textContent = `time per digit: ${micros.toFixed(0)} µs in this browser (median of ${TIMING_ROUNDS} rounds of ${TIMING_DIGITS} digits)`;
  page.timing = micros;
  buildDigitButtons();
  drawAll();
}

async function useListedModel() {
  const name = $("model-name").value;
  const listed = page.models.find((m) => m.name === name);
  const radios = document.querySelectorAll("input[name=precision]");
  for (const radio of radios) radio.disabled = !listed.precisions.includes(radio.value);
  let precision = document.querySelector("input[name=precision]:checked").value;
  if (!listed.precisions.includes(precision)) {
    precision = listed.precisions.includes("f16") ? "f16" : listed.precisions[0];
    document.querySelector(`input[name=precision][value=${precision}]`).checked = true;
  }
  const file = `models/${name}/decoder-${precision}.vae`;
  try {
    useModel(file, await fetchBytes(file));
  } catch (err) {
    showError(err.message);
  }
  await usePlaneModel(precision);
}

/// The plane's decoder: the latent-2 model in the chosen precision (f16 where it has no
/// file of that precision).
async function usePlaneModel(precision) {
  const listed = page.models.find((m) => m.name === PLANE_MODEL);
  if (!listed) {
    $("plane").hidden = true;
    return;
  }
  const chosen = listed.precisions.includes(precision) ? precision : "f16";
  const file = `models/${PLANE_MODEL}/decoder-${chosen}.vae`;
  try {
    page.plane.load(await fetchBytes(file));
    page.planeFile = file;
    drawPlane();
  } catch (err) {
    $("plane-caption").textContent = `${file}: ${err.message}`;
  }
}

function buildDigitButtons() {
  const holder = $("digits");
  holder.replaceChildren();
  for (let d = 0; d < page.main.digits; d++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(d);
    button.className = "digit";
    button.addEventListener("click", () => {
      page.digit = d;
      drawDigit();
    });
    holder.append(button);
  }
  if (page.main.digits === 0) holder.textContent = "unconditional model: free samples";
  if (page.digit >= page.main.digits) page.digit = 0;
}

/// The big digit: `page.digit` (or a free sample) from the seed at the temperature.
function drawDigit() {
  if (!page.main.header) return;
  const seed = int("seed");
  const digit = page.main.digits > 0 ? page.digit : null;
  const image = page.main.generate(seed, digit, page.temperature);
  paint($("digit-canvas"), [image], 1, 8);
  document.querySelectorAll("#digits button").forEach((b, d) => b.classList.toggle("chosen", d === digit));
  const what = digit === null ? "free sample" : `digit ${digit}`;
  $("digit-caption").textContent = `${what}, seed ${seed}, temperature ${page.temperature.toFixed(2)}`;
  page.lastDraws = [{ call: "generate", seed, digit, temperature: page.temperature }];
  return page.lastDraws;
}

/// The sample grid: ten seeds from the first seed, one column each; rows are digits 0-9
/// (a conditional model) or ten more seeds each (an unconditional one).
function drawGrid() {
  if (!page.main.header) return;
  const first = int("grid-seed");
  const conditional = page.main.digits > 0;
  const rows = conditional ? page.main.digits : 10;
  const draws = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 10; c++) {
      draws.push(conditional
        ? { call: "generate", seed: first + c, digit: r, temperature: page.temperature }
        : { call: "generate", seed: first + 10 * r + c, digit: null, temperature: page.temperature });
    }
  }
  const images = draws.map((d) => page.main.generate(d.seed, d.digit, d.temperature));
  paint($("grid-canvas"), images, 10, 2);
  $("grid-caption").textContent = conditional
    ? `rows: digits 0-${rows - 1}; columns: seeds ${first}-${first + 9}; temperature ${page.temperature.toFixed(2)}`
    : `seeds ${first}-${first + 99}, row by row; temperature ${page.temperature.toFixed(2)}`;
  page.lastDraws = draws;
  return draws;
}

/// The morph between two drawings, MORPH_STEPS images.
function drawMorph() {
  if (!page.main.header) return;
  const digits = page.main.digits;
  const digit = (id) => (digits > 0 ? Math.min(int(id), digits - 1) : null);
  const from = { seed: int("morph-from-seed"), digit: digit("morph-from-digit") };
  const to = { seed: int("morph-to-seed"), digit: digit("morph-to-digit") };
  const draws = [];
  for (let step = 0; step < MORPH_STEPS; step++) {
    draws.push({ call: "morph", from, to, step, steps: MORPH_STEPS });
  }
  const images = draws.map((d) => page.main.morph(d.from, d.to, d.step, d.steps));
  paint($("morph-canvas"), images, MORPH_STEPS, 2);
  page.lastDraws = draws;
  return draws;
}

function drawAll() {
  drawDigit();
  drawGrid();
  drawMorph();
}

/// The plane's background: a 15 x 15 manifold of the latent-2 model over the plane.
function drawPlane() {
  const n = 15;
  const images = [];
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const z = [-PLANE_RANGE + (2 * PLANE_RANGE * (col + 0.5)) / n, PLANE_RANGE - (2 * PLANE_RANGE * (row + 0.5)) / n];
      images.push(page.plane.decode(z, null));
    }
  }
  const canvas = $("plane-canvas");
  const tile = document.createElement("canvas");
  paint(tile, images, n, 1);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.drawImage(tile, 0, 0, canvas.width, canvas.height);
  page.planeBackground = context.getImageData(0, 0, canvas.width, canvas.height);
  planeAt(0, 0);
}

/// Draws the latent-2 model's digit at `z = (z1, z2)` and marks the point on the plane.
function planeAt(z1, z2) {
  const z = [Math.fround(z1), Math.fround(z2)];
  const image = page.plane.decode(z, null);
  paint($("plane-digit"), [image], 1, 6);
  const canvas = $("plane-canvas");
  const context = canvas.getContext("2d");
  if (page.planeBackground) context.putImageData(page.planeBackground, 0, 0);
  const x = ((z[0] + PLANE_RANGE) / (2 * PLANE_RANGE)) * canvas.width;
  const y = ((PLANE_RANGE - z[1]) / (2 * PLANE_RANGE)) * canvas.height;
  context.strokeStyle = "#f50";
  context.lineWidth = 2;
  context.beginPath();
  context.arc(x, y, 7, 0, 2 * Math.PI);
  context.stroke();
  $("plane-caption").textContent = `${page.planeFile}: z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
  page.lastPlaneZ = z;
}

function planePointer(event) {
  const canvas = $("plane-canvas");
  const box = canvas.getBoundingClientRect();
  const u = (event.clientX - box.left) / box.width;
  const v = (event.clientY - box.top) / box.height;
  planeAt(-PLANE_RANGE + 2 * PLANE_RANGE * u, PLANE_RANGE - 2 * PLANE_RANGE * v);
}

function wireControls() {
  $("model-name").addEventListener("change", useListedModel);
  document.querySelectorAll("input[name=precision]").forEach((r) => r.addEventListener("change", useListedModel));
  $("model-file").addEventListener("change", async () => {
    const file = $("model-file").files[0];
    if (file) useModel(file.name, new Uint8Array(await file.arrayBuffer()));
  });
  $("temperature").addEventListener("input", () => {
    page.temperature = Number($("temperature").value);
    $("temperature-value").textContent = page.temperature.toFixed(2);
    drawDigit();
    drawGrid();
  });
  $("seed").addEventListener("input", drawDigit);
  $("new-seed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 1e9));
    drawDigit();
  });
  $("grid-seed").addEventListener("input", drawGrid);
  $("grid-next").addEventListener("click", () => {
    $("grid-seed").value = String(int("grid-seed") + 10);
    drawGrid();
  });
  for (const id of ["morph-from-digit", "morph-from-seed", "morph-to-digit", "morph-to-seed"]) {
    $(id).addEventListener("input", drawMorph);
  }
  $("plane-canvas").addEventListener("pointermove", planePointer);
}

async function start() {
  const params = new URLSearchParams(location.search);
  [page.main, page.plane] = await Promise.all([Decoder.create(), Decoder.create()]);
  page.models = await (await fetch("models.json")).json();
  for (const m of page.models) $("model-name").append(new Option(m.name, m.name));
  wireControls();
  if (params.has("model")) {
    const url = params.get("model");
    try {
      useModel(url, await fetchBytes(url));
    } catch (err) {
      showError(err.message);
    }
    await usePlaneModel("f16");
  } else {
    $("model-name").value = page.models.some((m) => m.name === "default") ? "default" : page.models[0].name;
    await useListedModel();
  }
  if (params.has("check")) await check(params.has("model"));
  if (params.has("timing")) await timing();
}

/// The default model's files, timed as they load (`Decoder.timePerDigit`).
async function timing() {
  const report = { timings: {} };
  const listed = page.models.find((m) => m.name === "default");
  for (const precision of listed.precisions) {
    document.querySelector(`input[name=precision][value=${precision}]`).checked = true;
    await useListedModel();
    report.timings[precision] = page.timing;
  }
  report.userAgent = navigator.userAgent;
  $("check").textContent = JSON.stringify(report);
  document.title = "check done";
}

/// The loaded model's drawings through the controls, with what the canvases hold after
/// each: every digit button at the demo's seed, a grid at temperature 0.6, a digit at
/// another seed, a morph.
function checkDrawings(name) {
  const file = { file: name, timing: page.timing, draws: [] };
  const record = (draws, canvas, columns) => {
    const images = readBack($(canvas), draws.length, columns);
    draws.forEach((d, i) => file.draws.push({ ...d, pixels: hex(images[i]) }));
  };
  setInput("seed", 2026);
  setInput("temperature", 1);
  const buttons = document.querySelectorAll("#digits button");
  if (buttons.length === 0) record(drawDigit(), "digit-canvas", 1);
  for (const button of buttons) {
    button.click();
    record(page.lastDraws, "digit-canvas", 1);
  }
  setInput("temperature", 0.6);
  record(page.lastDraws, "grid-canvas", 10);
  setInput("seed", 77);
  record(page.lastDraws, "digit-canvas", 1);
  setInput("temperature", 1);
  setInput("morph-to-seed", 2027);
  record(page.lastDraws, "morph-canvas", MORPH_STEPS);
  return file;
}

/// Sets an input as a user would and sends its event.
function setInput(id, value, event = "input") {
  $(id).value = String(value);
  $(id).dispatchEvent(new Event(event));
}

/// The drawings of `checkDrawings` with every listed file, and the latent plane under a
/// moving pointer (tests/tests/browser.rs). With `given` (a `model=` file): that file's
/// error or header, and its drawings where it loaded.
async function check(given) {
  const report = { files: [] };
  if (given) {
    report.error = $("error").hidden ? null : $("error").textContent;
    report.header = page.main.header;
    if (page.main.header) report.files.push(checkDrawings(new URLSearchParams(location.search).get("model")));
  } else {
    for (const m of page.models) {
      for (const precision of m.precisions) {
        $("model-name").value = m.name;
        document.querySelector(`input[name=precision][value=${precision}]`).checked = true;
        await useListedModel();
        report.files.push(checkDrawings(`models/${m.name}/decoder-${precision}.vae`));
      }
    }
    // The plane, as a pointer crossing it would draw it.
    const plane = { file: page.planeFile, draws: [] };
    const canvas = $("plane-canvas");
    const box = canvas.getBoundingClientRect();
    for (const [u, v] of [[0.1, 0.2], [0.5, 0.5], [0.73, 0.31], [0.95, 0.9]]) {
      canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: box.left + u * box.width, clientY: box.top + v * box.height }));
      const pixels = hex(readBack($("plane-digit"), 1, 1)[0]);
      plane.draws.push({ call: "decode", z: page.lastPlaneZ, digit: null, pixels });
    }
    report.files.push(plane);
  }
  $("check").textContent = JSON.stringify(report);
  document.title = "check done";
}

start().catch((err) => showError(String(err && err.message ? err.message : err)));
