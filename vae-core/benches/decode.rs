//! Host decode speed of `vae-core`: one digit, and a batch of digits one after another,
//! with the committed default model's f32, f16 and i8 files. Throughput is reported in
//! multiply-accumulates (elements = MACs), so criterion's "elem/s" reads as MAC/s.
//!
//! ```sh
//! cargo bench -p vae-core --bench decode
//! ```

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vae_core::{Model, Sample, PIXELS};

const MODELS: [(&str, &[u8]); 3] = [
    (
        "f32",
        include_bytes!("../../models/default/decoder-f32.vae"),
    ),
    (
        "f16",
        include_bytes!("../../models/default/decoder-f16.vae"),
    ),
    ("i8", include_bytes!("../../models/default/decoder-i8.vae")),
];

/// Digits per batch.
const BATCH: usize = 64;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, bytes) in MODELS {
        // The files are committed and tested; a failure here is a broken checkout.
        let model = Model::parse(bytes).expect("committed model file parses");
        let macs = model.architecture().multiply_accumulates();
        // Decoder inputs: seeded samples for digits 0-9 in turn, as `vae sample` draws.
        let inputs: Vec<Vec<f32>> = (0..BATCH)
            .map(|k| {
                let mut input = [0.0; vae_core::MAX_WIDTH];
                let sample = Sample::new(k as u64, Some((k % 10) as u8));
                let (input, _) = model
                    .sample_input(sample, &mut input)
                    .expect("input for a digit 0-9");
                input.to_vec()
            })
            .collect();
        let mut probs = [0.0f32; PIXELS];
        let mut scratch = vec![0u32; model.scratch_len()];

        group.throughput(Throughput::Elements(macs as u64));
        group.bench_with_input(BenchmarkId::new("one digit", name), &inputs[0], |b, x| {
            b.iter(|| model.decode(black_box(x), &mut scratch, &mut probs))
        });
        group.throughput(Throughput::Elements((macs * BATCH) as u64));
        group.bench_with_input(BenchmarkId::new("64 digits", name), &inputs, |b, xs| {
            b.iter(|| {
                for x in xs {
                    let _ = model.decode(black_box(x), &mut scratch, &mut probs);
                    black_box(&probs);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
