//! The decoder in a real browser against the host: `scripts/web.sh` builds the page and
//! serves it (as README says), headless Chromium (Debian's, installed by
//! `scripts/setup.sh`) loads it, and the page draws through its own controls: every
//! committed model file, each digit button at the demo's seed, a sample grid at
//! temperature 0.6, a digit at another seed, a morph, and the latent plane under a moving
//! pointer. It reads back what its canvases hold, and every image must equal, byte for
//! byte, what `vae-core` on the host computes for the same call. The firmware prints the
//! host's pixels for the demo's drawings (tests/tests/firmware.rs), so the browser's digits
//! at the demo's seed are the firmware's too.
//!
//! The page is also given a corrupt, a cut-short and a foreign file: it must show the
//! parser's own error for each, not a blank page. And files of shapes no committed model
//! has (every layer with rows and columns past the kernels' groups, subnormal f16
//! weights), drawn and compared the same way.
//!
//! Chromium runs with `--dump-dom` and a budget of virtual time, which lets the page's
//! fetches and work finish before Chromium prints the DOM (the clock stands still while
//! the page computes, so its timings read 0 here; `scripts/bench-web.sh` measures them).
//! The page sets its title to "check done" and writes its report into `<pre id="check">`.
//! A missing Chromium fails the test and names the fix; a hung one is stopped after 300 s.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use vae_core::demo::{hex, DEMO_SEED};
use vae_core::{
    encode, encoded_len, Activation, Architecture, Model, Precision, Sample, MAX_WIDTH, PIXELS,
};
use vae_tests::{scratch_dir, workspace};

/// `scripts/web.sh --site DIR --port 0`, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Builds the page into `site` and serves it on a free port; the script's messages
    /// and the server's request log go to `log`.
    fn start(site: &Path, log: &Path) -> Server {
        let log_file = std::fs::File::create(log).expect("create the server's log");
        let mut child = Command::new(workspace().join("scripts/web.sh"))
            .args(["--port", "0", "--site"])
            .arg(site)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start scripts/web.sh");
        let stdout = child.stdout.take().expect("the script's output");
        // python's http.server: "Serving HTTP on 127.0.0.1 port 40123 (http://...) ..."
        let port = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.strip_prefix("Serving HTTP on 127.0.0.1 port ")?;
                rest.split_whitespace().next()?.parse().ok()
            });
        match port {
            Some(port) => Server { child, port },
            None => {
                let status = child.wait();
                let said = std::fs::read_to_string(log).unwrap_or_default();
                panic!("scripts/web.sh did not serve the page ({status:?}):\n{said}")
            }
        }
    }

    fn url(&self, query: &str) -> String {
        format!("http://127.0.0.1:{}/?{query}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page at `url` in headless Chromium, run until its check is done: the report it
/// wrote into `<pre id="check">`.
fn check_in_chromium(url: &str, profile: &Path) -> Value {
    let version = Command::new("chromium").arg("--version").output();
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "chromium does not run (scripts/setup.sh --browser installs it: apt-get install chromium)"
    );
    let output = Command::new("timeout")
        .args(["300", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=120000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("<title>check done</title>"),
        "{url}: the page did not finish its check; chromium said:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        dom.chars().take(3000).collect::<String>()
    );
    let start = dom.find("<pre id=\"check\"").expect("the check element");
    let text = &dom[start..];
    let text = &text[text.find('>').expect("element start") + 1..];
    let text = &text[..text.find("</pre>").expect("element end")];
    let json = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{url}: the report: {e}"))
}

fn seed(v: &Value) -> u64 {
    v.as_u64().expect("a seed")
}

fn digit(v: &Value) -> Option<u8> {
    v.as_u64().map(|d| u8::try_from(d).expect("a digit"))
}

/// What `vae-core` on the host draws for one of the page's drawing calls.
fn host_pixels(model: &Model<'_>, draw: &Value) -> [u8; PIXELS] {
    let mut pixels = [0u8; PIXELS];
    let scratch = &mut vec![0u32; model.scratch_len()];
    match draw["call"].as_str() {
        Some("generate") => {
            let temperature = draw["temperature"].as_f64().expect("temperature") as f32;
            let sample = Sample::new(seed(&draw["seed"]), digit(&draw["digit"]));
            model
                .generate(sample.at_temperature(temperature), scratch, &mut pixels)
                .expect("generate");
        }
        Some("morph") => {
            let end = |e: &Value| Sample::new(seed(&e["seed"]), digit(&e["digit"]));
            let count = |v: &Value| u16::try_from(v.as_u64().expect("a step")).expect("a step");
            model
                .morph(
                    end(&draw["from"]),
                    end(&draw["to"]),
                    count(&draw["step"]),
                    count(&draw["steps"]),
                    scratch,
                    &mut pixels,
                )
                .expect("morph");
        }
        Some("decode") => {
            let z: Vec<f32> = draw["z"]
                .as_array()
                .expect("z")
                .iter()
                .map(|v| v.as_f64().expect("a number") as f32)
                .collect();
            let mut input = [0.0f32; MAX_WIDTH];
            let input = model
                .input(&z, digit(&draw["digit"]), &mut input)
                .expect("input");
            model.decode(input, scratch, &mut pixels).expect("decode");
        }
        other => panic!("unknown call {other:?}"),
    }
    pixels
}

/// Each of the page's drawings equals, byte for byte, the host's for the same call.
fn assert_same_pixels(name: &str, model: &Model<'_>, draws: &[Value]) {
    for (k, draw) in draws.iter().enumerate() {
        let want = hex(&host_pixels(model, draw));
        let got = draw["pixels"].as_str().expect("pixels");
        assert_eq!(
            got,
            std::str::from_utf8(&want).expect("hex"),
            "{name}, drawing {k}: {draw}"
        );
    }
}

/// Model files of shapes no committed model has, in every precision: 3 classes, latent
/// 3, hidden layers of 7 and 5 (relu, and sigmoid), so every layer has rows and columns
/// past the kernels' groups of four and sixteen; weights of both signs up to 3, with
/// every fifth one below f16's smallest normal (a subnormal half).
fn odd_files(site: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for activation in [Activation::Relu, Activation::Sigmoid] {
        let arch = Architecture::dense(
            3,
            3,
            heapless::Vec::from_slice(&[7, 5]).expect("two layers"),
            activation,
        );
        for precision in Precision::ALL {
            let mut rng = vae_core::Rng::new(17);
            let values = (0..arch.parameter_count()).map(|i| {
                let v = rng.uniform() * 6.0 - 3.0;
                if i % 5 == 0 {
                    v * 1e-5
                } else {
                    v
                }
            });
            let mut bytes = vec![0u8; encoded_len(&arch, precision).expect("a length")];
            encode(&arch, precision, values, &mut bytes).expect("a model file");
            let name = format!("odd-{activation}-{precision}.vae");
            std::fs::write(site.join(&name), &bytes).expect("write a model file");
            files.push((name, bytes));
        }
    }
    files
}

/// Every committed model's decoder files, as the page lists them: all but the
/// convolutional models' (their `config.json` has a `convolutional` part), which the
/// module cannot decode.
fn committed_files() -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(workspace().join("models")).expect("models/") {
        let dir = entry.expect("an entry").path();
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
        if config.contains("\"convolutional\"") {
            continue;
        }
        for p in ["f32", "f16", "i8"] {
            let file = dir.join(format!("decoder-{p}.vae"));
            if file.exists() {
                let name = dir.file_name().expect("a name").to_string_lossy();
                files.push(format!("models/{name}/decoder-{p}.vae"));
            }
        }
    }
    files.sort();
    files
}

/// The bytes of `file` with one payload byte flipped, cut in half, or not a model file.
fn hostile_files(site: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let good = std::fs::read(workspace().join("models/default/decoder-i8.vae")).expect("i8 file");
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    let cut = good[..good.len() / 2].to_vec();
    let foreign = std::fs::read(workspace().join("docs/samples.png")).expect("a PNG");
    let files = vec![
        ("flipped.vae", flipped),
        ("cut.vae", cut),
        ("foreign.vae", foreign),
    ];
    for (name, bytes) in &files {
        std::fs::write(site.join(name), bytes).expect("write a hostile file");
    }
    files
}

#[test]
fn the_page_draws_the_host_s_pixels_and_shows_the_parser_s_errors() {
    let scratch = scratch_dir("browser");
    let site: PathBuf = scratch.join("site");
    let server = Server::start(&site, &scratch.join("server.log"));
    // The module, the model files apart: at most 64 KB, the page's budget (its size:
    // docs/web.md).
    let wasm = std::fs::metadata(site.join("vae_web.wasm"))
        .expect("the module")
        .len();
    assert!(wasm <= 64_000, "vae_web.wasm is {wasm} bytes");

    let report = check_in_chromium(&server.url("check"), &scratch.join("profile-1"));
    let files = report["files"].as_array().expect("files");
    let mut checked: Vec<String> = Vec::new();
    let mut demo_digits = 0;
    let mut images = 0;
    for file in files {
        let name = file["file"].as_str().expect("a file name");
        let bytes = std::fs::read(workspace().join(name)).expect("the model file");
        let model = Model::parse(&bytes).expect("a committed model");
        let draws = file["draws"].as_array().expect("draws");
        assert_same_pixels(name, &model, draws);
        for draw in draws {
            let is_demo_digit = draw["call"] == "generate"
                && draw["seed"] == DEMO_SEED
                && draw["temperature"] == 1.0
                && !draw["digit"].is_null();
            demo_digits += usize::from(is_demo_digit);
            images += 1;
        }
        if file.get("timing").is_some() {
            // The digit buttons (10 or 1), 100 samples, 1 digit and an 8-step morph.
            let least = if model.is_conditional() { 119 } else { 110 };
            assert!(draws.len() >= least, "{name}: {} drawings", draws.len());
            checked.push(name.to_string());
        } else {
            assert_eq!(draws.len(), 4, "{name}: the plane's pointer positions");
            assert_eq!(model.architecture().latent, 2, "{name}: the plane's model");
        }
    }
    checked.sort();
    assert_eq!(checked, committed_files(), "the files the page drew with");
    // Digits 0-9 of the three conditional files of models/default, and of the IWAE ones.
    assert!(demo_digits >= 30, "{demo_digits} digits at the demo's seed");
    eprintln!("{images} images drawn in Chromium, each equal to the host's");

    for (k, (name, bytes)) in hostile_files(&site).into_iter().enumerate() {
        let report = check_in_chromium(
            &server.url(&format!("check&model={name}")),
            &scratch.join(format!("profile-hostile-{k}")),
        );
        let error = Model::parse(&bytes).expect_err("a hostile file");
        assert_eq!(
            report["error"].as_str(),
            Some(format!("This model file cannot be used: {error}").as_str()),
            "{name}"
        );
        assert!(report["header"].is_null(), "{name}: no model loaded");
    }

    // A decoder with transposed convolutions: the host decodes it, the module (built
    // without vae-core's `transposed-conv`) refuses it by name.
    let tconv = std::fs::read(workspace().join("models/tutorial/decoder-f16.vae"))
        .expect("the tutorial model's f16 file");
    Model::parse(&tconv).expect("the host reads it");
    std::fs::write(site.join("tconv.vae"), &tconv).expect("write the tutorial's file");
    let report = check_in_chromium(
        &server.url("check&model=tconv.vae"),
        &scratch.join("profile-tconv"),
    );
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(
            "This model file cannot be used: unsupported architecture: transposed convolutions"
        ),
        "{error}"
    );
    assert!(report["header"].is_null(), "tconv.vae: no model loaded");

    for (k, (name, bytes)) in odd_files(&site).into_iter().enumerate() {
        let report = check_in_chromium(
            &server.url(&format!("check&model={name}")),
            &scratch.join(format!("profile-odd-{k}")),
        );
        assert!(report["error"].is_null(), "{name}: {}", report["error"]);
        let model = Model::parse(&bytes).expect("a model file");
        let draws = report["files"][0]["draws"].as_array().expect("draws");
        // Three digit buttons, 30 samples, a digit and an 8-step morph.
        assert_eq!(draws.len(), 3 + 30 + 1 + 8, "{name}");
        assert_same_pixels(&name, &model, draws);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
}
