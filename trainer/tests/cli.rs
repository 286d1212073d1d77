//! The `vae` binary as a user runs it: good input works, bad input gets a clear message
//! and a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trainer::foundation::config::Preset;
use vae_tests::{scratch_dir, workspace};

fn vae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vae"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("the vae binary runs")
}

/// A path `name` in a fresh folder of its own.
fn scratch(name: &str) -> PathBuf {
    scratch_dir(&format!("cli-{name}")).join(name)
}

const MODEL: &str = "models/default/decoder-f16.vae";

/// Fails with the command's output unless it exited non-zero, said `needle` on stderr
/// and did not panic.
fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
}

#[test]
fn sample_digit_writes_a_png_and_raw_pixels() {
    let png = scratch("sevens.png");
    let raw = scratch("sevens.raw");
    let out = vae(&[
        "sample",
        "--model",
        MODEL,
        "--digit",
        "7",
        "--count",
        "8",
        "--out",
        png.to_str().unwrap(),
        "--raw",
        raw.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height big-endian at bytes 16..24. 8 tiles of 56 px + 9 gutters of 2.
    assert_eq!(
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        8 * 56 + 9 * 2
    );
    assert_eq!(
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
        56 + 2 * 2
    );
    assert_eq!(std::fs::read(&raw).unwrap().len(), 8 * 784);
}

#[test]
fn inspect_reports_a_good_file() {
    let out = vae(&["inspect", MODEL]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("version 2"), "{stdout}");
    assert!(stdout.contains("precision:   f16"), "{stdout}");
    assert!(stdout.contains("OK"), "{stdout}");
}

/// A reader that stops reading (`vae inspect FILE | head -1`) ends `vae` quietly with
/// success, where printing to a closed pipe would panic: stdout here is a pipe whose
/// reading end is closed before `vae` starts, so its first line meets the closed pipe.
#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [&["inspect", MODEL][..], &["config", "--preset", "conv"]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_vae"))
            .args(args)
            .current_dir(workspace())
            .stdout(writer)
            .output()
            .expect("the vae binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{args:?}: {:?}; stderr: {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{args:?}: stderr: {stderr}");
    }
}

#[test]
fn damaged_model_files_are_refused() {
    let good = std::fs::read(workspace().join(MODEL)).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("empty.vae", Vec::new(), "not a VAE model file"),
        (
            "truncated.vae",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "flipped.vae",
            {
                let mut b = good.clone();
                let last = b.len() - 1;
                b[last] ^= 0x10;
                b
            },
            "CRC-32",
        ),
        (
            "v1.vae",
            {
                let mut b = good.clone();
                b[4] = 1;
                b
            },
            "version 1 is not supported (this build reads version 2 to version 3)",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = scratch(name);
        std::fs::write(&path, bytes).unwrap();
        let p = path.to_str().unwrap();
        assert_fails_with(&vae(&["inspect", p]), needle);
        assert_fails_with(
            &vae(&[
                "sample",
                "--model",
                p,
                "--out",
                scratch("x.png").to_str().unwrap(),
            ]),
            needle,
        );
    }
    assert_fails_with(
        &vae(&["sample", "--model", "no/such/file.vae"]),
        "cannot read model file",
    );
}

#[test]
fn out_of_range_arguments_are_refused() {
    assert_fails_with(
        &vae(&["sample", "--model", MODEL, "--digit", "10"]),
        "10 is not in 0..=9",
    );
    assert_fails_with(
        &vae(&["train", "--batch-size", "0"]),
        "'--batch-size <BATCH_SIZE>': 0 is not in 1..",
    );
    assert_fails_with(
        &vae(&["train", "--latent", "0"]),
        "'--latent <LATENT>': 0 is not in 1..",
    );
    assert_fails_with(&vae(&["frobnicate"]), "unrecognized subcommand");
}

/// Widths past what a run can hold, an image name that is not a PNG's and a preset with
/// the flags it fixes are refused with a message naming the value and the limit.
#[test]
fn out_of_range_settings_name_the_limit() {
    assert_fails_with(
        &vae(&["train", "--decoder-hidden", "99999999999"]),
        "decoder hidden width 99999999999 is too large: at most 512",
    );
    assert_fails_with(
        &vae(&["train", "--encoder-hidden", "400,99999999999"]),
        "hidden width 99999999999 is too large: encoder, classifier and critic layers may \
         be at most 16384 wide",
    );
    assert_fails_with(
        &vae(&["train", "--latent", "600"]),
        "latent size 600 is too large",
    );
    for out in ["x.jpg", "x", "x.png.txt"] {
        assert_fails_with(
            &vae(&["sample", "--out", out]),
            &format!("{out} does not end in .png"),
        );
    }
    assert_fails_with(
        &vae(&["firmware-png", "-", "--out", "f.gif"]),
        "f.gif does not end in .png",
    );
    assert_fails_with(
        &vae(&["train", "--preset", "classic", "--latent", "3"]),
        "cannot be used with",
    );
}

/// `vae config` prints what `vae train` records: the defaults, or a preset's.
#[test]
fn config_prints_the_defaults_and_the_presets() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = vae(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let default = json(&["config"]);
    assert_eq!(default["model"]["latent"], 8);
    assert_eq!(default["class_weight"], 10.0);
    assert_eq!(default["lr_schedule"], "cosine");
    let classic = json(&["config", "--preset", "classic"]);
    assert_eq!(classic["model"]["latent"], 20);
    assert_eq!(classic["model"]["decoder_hidden"], serde_json::json!([400]));
    assert_eq!(classic["model"]["classes"], 0);
    assert_eq!(classic["batch_size"], 128);
    let quick = json(&["config", "--preset", "quick"]);
    assert_eq!(quick["model"]["latent"], 10);
    assert_eq!(quick["epochs"], 30);
    assert_eq!(quick["lr_schedule"], "constant");
}

/// `--help` lists every preset with its summary, from the one list of presets, for
/// `vae train` and `vae config`.
#[test]
fn help_names_every_preset() {
    for command in ["train", "config"] {
        let out = vae(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{help}");
        for preset in Preset::ALL {
            let line = format!("- {}:", preset.name());
            assert!(help.contains(&line), "{command}: {line:?} not in {help}");
            assert!(help.contains(preset.summary()), "{command}: {help}");
        }
    }
}

/// A setting's flag given together with what decides it (`--preset`, `--config`,
/// `--init`), or two ways to start a run, is refused naming both flags, before anything
/// is read; settings a preset leaves open are taken with it.
#[test]
fn conflicting_flags_are_refused() {
    // (the command line after `vae train`, the two flags the message names)
    let pairs = [
        (
            "--preset quick --batch-size 3",
            "--preset <PRESET>",
            "--batch-size <BATCH_SIZE>",
        ),
        (
            "--preset conv --unconditional --seed 1",
            "--preset <PRESET>",
            "--unconditional",
        ),
        (
            "--config x.json --seed 3",
            "--config <FILE>",
            "--seed <SEED>",
        ),
        (
            "--config x.json --preset quick",
            "--config <FILE>",
            "--preset <PRESET>",
        ),
        (
            "--init models/iwae --activation relu",
            "--init <DIR>",
            "--activation <ACTIVATION>",
        ),
        (
            "--init models/iwae --preset classic",
            "--init <DIR>",
            "--preset <PRESET>",
        ),
        ("--resume --init models/iwae", "--resume", "--init <DIR>"),
    ];
    for (args, first, second) in pairs {
        let args: Vec<&str> = ["train"].into_iter().chain(args.split(' ')).collect();
        let out = vae(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = format!("the argument '{first}' cannot be used with '{second}'");
        let reversed = format!("the argument '{second}' cannot be used with '{first}'");
        assert!(
            stderr.contains(&named) || stderr.contains(&reversed),
            "{args:?}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    }
    assert_fails_with(
        &vae(&[
            "train",
            "--preset",
            "tutorial",
            "--seed",
            "3",
            "--binarize",
            "none",
            "--data-dir",
            "no/such",
        ]),
        "fetch-mnist.sh",
    );
}

#[test]
fn fine_tuning_arguments_are_checked() {
    assert_fails_with(
        &vae(&["train", "--init", "models/iwae", "--latent", "8"]),
        "cannot be used with",
    );
    let out = scratch("init");
    assert_fails_with(
        &vae(&[
            "train",
            "--init",
            "no/such/run",
            "--out",
            out.to_str().unwrap(),
        ]),
        "no/such/run is not a training run folder",
    );
    assert_fails_with(
        &vae(&[
            "train",
            "--importance-samples",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]),
        "--importance-samples above 1 trains unconditional models only",
    );
}

/// Critic settings no run can train with are refused with what to change, before MNIST
/// is read (the data folder given does not exist).
#[test]
fn critic_settings_are_checked() {
    let out = scratch("critic");
    let cases = [
        (
            "--adversarial-weight 30",
            "--adversarial-weight needs a critic to learn from: give --critic-hidden",
        ),
        (
            "--critic-spectral-norm true",
            "--critic-spectral-norm needs a critic: give --critic-hidden",
        ),
        (
            "--feature-weight 2",
            "--feature-weight needs a critic to learn from: give --critic-hidden",
        ),
        (
            "--critic-hidden 64 --adversarial-weight=-1",
            "--adversarial-weight must be 0 (off) or a positive number",
        ),
        (
            "--critic-hidden 64 --adversarial-weight NaN",
            "--adversarial-weight must be 0 (off) or a positive number",
        ),
        (
            "--critic-hidden 64 --unconditional --importance-samples 5",
            "a critic trains beside the ELBO only",
        ),
        (
            "--critic-hidden 64,20000 --adversarial-weight 1",
            "hidden width 20000 is too large",
        ),
    ];
    for (flags, error) in cases {
        let args: Vec<&str> = ["train", "--data-dir", "no/such", "--out"]
            .into_iter()
            .chain([out.to_str().unwrap()])
            .chain(flags.split(' '))
            .collect();
        assert_fails_with(&vae(&args), error);
    }
}

/// Fine-tuning a run (`--init`) with a critic: the model is the other run's, the critic
/// this run's, as its flags describe it (recorded in config.json), trained from fresh
/// weights (the checkpoint holds its layers).
#[test]
fn fine_tuning_with_a_critic_trains_the_critic_asked_for() {
    let out = scratch("critic-run");
    let o = vae(&[
        "train",
        "--init",
        "models/default",
        "--critic-hidden",
        "24",
        "--critic-spectral-norm",
        "true",
        "--adversarial-weight",
        "3",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--test-limit",
        "100",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    let model = &config["model"];
    assert_eq!(model["critic_hidden"], serde_json::json!([24]), "{config}");
    assert_eq!(model["critic_spectral_norm"], true, "{config}");
    assert_eq!(
        model["decoder_hidden"],
        serde_json::json!([128]),
        "{config}"
    );
    let checkpoint = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&checkpoint[..4096.min(checkpoint.len())]);
    assert!(header.contains("critic.1.weight"), "{header}");
}

#[test]
fn missing_data_names_the_fix() {
    let out = vae(&[
        "train",
        "--data-dir",
        "no/such/folder",
        "--out",
        scratch("run").to_str().unwrap(),
    ]);
    assert_fails_with(&out, "fetch-mnist.sh");
}

#[test]
fn bad_mnist_files_are_refused() {
    use mnist::{idx_bytes as idx, IMAGES_MAGIC as IMAGES, LABELS_MAGIC as LABELS};
    let images = |n: u32| idx(IMAGES, &[n, 28, 28], &vec![7; 784 * n as usize]);
    let labels = |digits: &[u8]| idx(LABELS, &[digits.len() as u32], digits);
    // (what, images file, labels file, expected words); the message names the images
    // file, or the labels file where that is the broken one.
    let cases: [(&str, Vec<u8>, Vec<u8>, &str); 8] = [
        ("empty images", Vec::new(), labels(&[1]), "too short for an IDX header"),
        (
            "labels where the images belong",
            labels(&[1]),
            labels(&[1]),
            "magic number 0x00000801 (an MNIST labels file), expected 0x00000803 (an MNIST images file)",
        ),
        (
            "images where the labels belong",
            images(1),
            images(1),
            "expected 0x00000801 (an MNIST labels file)",
        ),
        (
            "images of the wrong size",
            idx(IMAGES, &[1, 14, 56], &[0; 784]),
            labels(&[1]),
            "images are [1, 14, 56], expected N x 28 x 28",
        ),
        ("truncated images", images(2)[..1000].to_vec(), labels(&[1, 2]), "truncated"),
        ("bytes after the images", [images(1), vec![0]].concat(), labels(&[1]), "too long"),
        ("more labels than images", images(2), labels(&[1, 2, 3]), "2 images but 3 labels"),
        ("a label that is no digit", images(2), labels(&[1, 11]), "label 11 is not a digit"),
    ];
    for (what, image_bytes, label_bytes, needle) in cases {
        let dir = scratch(&format!("mnist-{}", what.replace(' ', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte"), image_bytes).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), label_bytes).unwrap();
        let out = vae(&[
            "train",
            "--data-dir",
            dir.to_str().unwrap(),
            "--out",
            dir.join("run").to_str().unwrap(),
        ]);
        assert_fails_with(&out, needle);
        let named = if what.ends_with("where the labels belong") {
            "train-labels-idx1-ubyte"
        } else {
            "train-images-idx3-ubyte"
        };
        assert_fails_with(&out, named);
        assert!(
            !dir.join("run").join("checkpoint.safetensors").exists(),
            "{what}"
        );
    }

    // Unreadable: a folder where a file belongs, a gzip file that is not gzip, a file
    // where the data folder belongs.
    let dir = scratch("mnist-unreadable");
    std::fs::create_dir_all(dir.join("train-images-idx3-ubyte")).unwrap();
    let out = vae(&["train", "--data-dir", dir.to_str().unwrap()]);
    assert_fails_with(&out, "cannot read");
    std::fs::remove_dir(dir.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), images(1)).unwrap();
    let out = vae(&["train", "--data-dir", dir.to_str().unwrap()]);
    assert_fails_with(&out, "cannot read");
    assert_fails_with(&out, "train-images-idx3-ubyte.gz");
    let file = dir.join("train-images-idx3-ubyte.gz");
    let out = vae(&["train", "--data-dir", file.to_str().unwrap()]);
    assert_fails_with(&out, "is not a folder");
}

#[test]
fn unwritable_output_is_an_error() {
    let out = vae(&["sample", "--model", MODEL, "--out", "/proc/version/x.png"]);
    assert_fails_with(&out, "x.png");
}

#[test]
fn firmware_png_draws_the_logged_images_and_refuses_a_broken_log() {
    let log = scratch("firmware.log");
    let hex: String = (0..784).map(|i| format!("{:02x}", i % 256)).collect();
    std::fs::write(
        &log,
        format!("vae firmware\nimage 0: digit 0\npixels 0 {hex}\ncost 0 1\npixels 1 {hex}\ndone\n"),
    )
    .unwrap();
    let png = scratch("firmware.png");
    let out = vae(&[
        "firmware-png",
        log.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    // Two tiles side by side: 2 x 56 px + 3 gutters of 2.
    assert_eq!(
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        2 * 56 + 3 * 2
    );

    let broken = scratch("broken.log");
    std::fs::write(&broken, format!("pixels 0 {}\n", &hex[..100])).unwrap();
    assert_fails_with(
        &vae(&["firmware-png", broken.to_str().unwrap()]),
        "line 1: expected `pixels N` and 1,568 hex digits",
    );
    let empty = scratch("empty.log");
    std::fs::write(&empty, "hello\n").unwrap();
    assert_fails_with(
        &vae(&["firmware-png", empty.to_str().unwrap()]),
        "no `pixels` lines",
    );
}

#[test]
fn pictures_and_eval_write_their_files() {
    let out = scratch("pictures");
    let run = workspace().join("models/default");
    let o = vae(&[
        "pictures",
        "--run",
        run.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in [
        "loss.png",
        "reconstructions.png",
        "morph.png",
        "conditional.png",
    ] {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}");
    }
    // Morph: the two ends and ten steps in one row of 56-pixel tiles.
    let morph = std::fs::read(out.join("morph.png")).unwrap();
    assert_eq!(
        u32::from_be_bytes(morph[16..20].try_into().unwrap()),
        12 * 56 + 13 * 2
    );

    let json = out.join("eval.json");
    let o = vae(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--test-limit",
        "300",
        "--iwae-k",
        "0",
        "--per-digit",
        "20",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&json).unwrap();
    for key in [
        "\"test_loss\"",
        "\"test_elbo_binarized\"",
        "\"label_fidelity_t05\"",
        "\"f16_minus_f32\"",
    ] {
        assert!(text.contains(key), "{key} missing in {text}");
    }
    // A run folder that is not one.
    assert_fails_with(
        &vae(&["eval", "--run", out.to_str().unwrap()]),
        "is not a training run folder",
    );
}

/// The `vae` binary started in the background (to be killed), its standard output
/// discarded and its errors written to `errors`.
fn spawn_vae(args: &[&str], errors: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vae"))
        .args(args)
        .current_dir(workspace())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(errors).unwrap())
        .spawn()
        .unwrap()
}

/// The clock's nanoseconds, for delays that differ in every run of a test.
fn clock_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Epochs recorded in a run folder's history.
fn epochs_done(run: &Path) -> usize {
    std::fs::read(run.join("history.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .map_or(0, |h| h.len())
}

/// A training run killed (SIGKILL) at an arbitrary moment — with epochs this short, often
/// in the middle of writing its files — keeps a checkpoint that exports, and `--resume`
/// continues it. Three kills in a row, each after a different delay.
#[test]
fn a_killed_training_run_keeps_its_checkpoint_and_resumes() {
    let run = scratch("killed");
    let _ = std::fs::remove_dir_all(&run);
    let run_s = run.to_str().unwrap();
    let common = ["--no-progress", "--out", run_s];
    let first = [
        "train",
        "--epochs",
        "1000",
        "--train-limit",
        "1000",
        "--test-limit",
        "200",
        "--unconditional",
        "--latent",
        "4",
        "--encoder-hidden",
        "32",
        "--decoder-hidden",
        "16",
    ];
    let nanos = clock_nanos();
    for round in 0..3u32 {
        let done_before = epochs_done(&run);
        let mut args: Vec<&str> = if round == 0 {
            first.to_vec()
        } else {
            vec!["train", "--resume", "--epochs", "1000"]
        };
        args.extend(common);
        let errors = scratch("killed-stderr.txt");
        let mut child = spawn_vae(&args, &errors);
        let started = std::time::Instant::now();
        // Two more records in the history: the first of them is then also in the
        // resume state and the checkpoint (written after the history), so the run has
        // moved on and has something to export.
        while epochs_done(&run) < done_before + 2 {
            assert!(started.elapsed().as_secs() < 120, "no epoch finished");
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "round {round}: training stopped early ({status}): {}",
                    std::fs::read_to_string(&errors).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let delay = (nanos >> (round * 8)) % 400;
        std::thread::sleep(std::time::Duration::from_millis(u64::from(delay)));
        child.kill().unwrap();
        child.wait().unwrap();

        let export = vae(&["export", "--run", run_s]);
        assert!(
            export.status.success(),
            "after kill {round} ({delay} ms): {}",
            String::from_utf8_lossy(&export.stderr)
        );
    }
    let done = epochs_done(&run);
    let target = (done + 1).to_string();
    let resumed = vae(&[
        "train",
        "--resume",
        "--epochs",
        &target,
        "--no-progress",
        "--out",
        run_s,
    ]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(epochs_done(&run), done + 1);
}

/// `vae export` killed (SIGKILL) at arbitrary moments over the model files of an earlier
/// export: each file is always whole (the old or the new one, which are the same bytes
/// here), never cut short, since exports are written to a temporary file and renamed.
/// With `write_atomic` replaced by a plain `std::fs::write`, 2 of 3 runs of 24 kills
/// failed; 48 kills make a miss less likely.
#[test]
fn a_killed_export_leaves_each_model_file_whole() {
    let run = scratch("killed-export");
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    for file in ["config.json", "checkpoint.safetensors"] {
        std::fs::copy(
            workspace().join("models/default").join(file),
            run.join(file),
        )
        .unwrap();
    }
    let run_s = run.to_str().unwrap();
    let export = vae(&["export", "--run", run_s]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let files = ["decoder-f32.vae", "decoder-f16.vae", "decoder-i8.vae"];
    let whole: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();

    let errors = scratch("killed-export-stderr.txt");
    let nanos = clock_nanos();
    for round in 0..48u32 {
        let mut child = spawn_vae(&["export", "--run", run_s], &errors);
        // An export takes some tens of milliseconds: kill within that.
        let delay = nanos.rotate_left(round * 5) % 40_000;
        std::thread::sleep(std::time::Duration::from_micros(u64::from(delay)));
        child.kill().unwrap();
        child.wait().unwrap();
        for (file, bytes) in files.iter().zip(&whole) {
            let now = std::fs::read(run.join(file)).unwrap();
            assert!(&now == bytes, "{file} changed after a kill at {delay} µs");
            vae_core::Model::parse(&now).unwrap();
        }
    }
}

/// `vae device-check --device cpu` compares the CPU with itself: every stage passes, one
/// line each (the command's output, not the comparison: an injected fault is
/// `device::check`'s `a_perturbed_tensor_fails_the_comparison`); `--device cuda` in this build (no `cuda` feature) fails at the first stage
/// and says how to build with CUDA.
#[test]
fn device_check_reports_each_stage() {
    let out = vae(&["device-check", "--device", "cpu"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let stages = [
        "device",
        "matrix product (cuBLAS on CUDA)",
        "training step kernels (precompiled)",
        "Adam update",
        "batches gathered on the device",
    ];
    assert_eq!(lines.len(), stages.len(), "{stdout}");
    for (line, stage) in lines.iter().zip(stages) {
        assert!(line.starts_with(&format!("ok   {stage}: ")), "{stdout}");
    }

    let out = vae(&["device-check", "--device", "cuda"]);
    if !cfg!(feature = "cuda") {
        assert_fails_with(&out, "device check: no device to check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("FAIL device: ") && stdout.contains("built without CUDA support"),
            "{stdout}"
        );
    }
}
