//! Rough performance numbers. Ignored by default; run with
//! `cargo test -p himg-store --test perf -- --ignored --nocapture`.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{key, out_path, temp_store};
use himg_store::{ObjectRef, OutputRecord};

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[test]
#[ignore = "benchmark"]
fn perf_numbers() {
    let (dir, store) = temp_store();
    let n = 2000usize;
    let size = 100 * 1024;
    let blobs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = vec![0u8; size];
            for (j, b) in v.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8;
            }
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            v
        })
        .collect();

    let t = Instant::now();
    let digests: Vec<_> = blobs
        .iter()
        .map(|b| store.put_blob(b).expect("put"))
        .collect();
    let put = ms(t);
    let t = Instant::now();
    store.sync().expect("sync");
    let sync = ms(t);
    eprintln!(
        "put_blob: {n} x 100 KiB in {put:.0} ms ({:.0} MB/s, {:.1} us each); sync {sync:.1} ms",
        (n * size) as f64 / put / 1000.0,
        put * 1000.0 / n as f64
    );
    let t = Instant::now();
    for b in &blobs {
        store.put_blob(b).expect("put");
    }
    eprintln!("put_blob again (all present): {:.0} ms", ms(t));

    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let other: Vec<_> = (0..n)
        .map(|i| {
            let p = src.join(format!("f{i}"));
            let mut data = blobs[i].clone();
            data[0] ^= 0xff;
            std::fs::write(&p, data).expect("write");
            p
        })
        .collect();
    let t = Instant::now();
    for p in &other {
        store.put_blob_from_path(p).expect("from path");
    }
    eprintln!("put_blob_from_path: {n} x 100 KiB in {:.0} ms", ms(t));

    let t = Instant::now();
    let report = store.verify().expect("verify");
    let v = ms(t);
    assert!(report.is_ok());
    eprintln!(
        "verify: {} objects, {} MB in {v:.0} ms ({:.0} MB/s)",
        report.objects_checked,
        report.bytes_checked / 1_000_000,
        report.bytes_checked as f64 / v / 1000.0
    );

    let t = Instant::now();
    for (i, d) in digests.iter().enumerate() {
        let rec = OutputRecord {
            path: out_path(&format!("o{i}")),
            content: ObjectRef::Blob(*d),
            size: size as u64,
            meta: serde_json::json!({ "i": i }),
            refs_outputs: vec![],
            refs_objects: vec![],
        };
        store
            .register_output(&[key(&format!("k{i}"))], &rec)
            .expect("register");
    }
    let reg = ms(t);
    eprintln!(
        "register_output: {n} in {reg:.0} ms ({:.0} us each)",
        reg * 1000.0 / n as f64
    );

    let t = Instant::now();
    for i in 0..n {
        assert!(
            store
                .lookup_derivation(&key(&format!("k{i}")))
                .expect("lookup")
                .is_some()
        );
    }
    let look = ms(t);
    eprintln!(
        "lookup_derivation (hit): {:.1} us each",
        look * 1000.0 / n as f64
    );
    let t = Instant::now();
    for i in 0..n {
        assert!(
            store
                .lookup_derivation(&key(&format!("miss{i}")))
                .expect("lookup")
                .is_none()
        );
    }
    eprintln!(
        "lookup_derivation (miss): {:.1} us each",
        ms(t) * 1000.0 / n as f64
    );

    let store = Arc::new(store);
    let t = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    s.lookup_derivation(&key(&format!("k{i}"))).expect("lookup");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    eprintln!(
        "lookup_derivation, 4 threads: {:.1} us per lookup overall",
        ms(t) * 1000.0 / (4 * n) as f64
    );

    let metas: Vec<_> = other
        .iter()
        .map(|p| (p.clone(), std::fs::metadata(p).expect("stat")))
        .collect();
    let t = Instant::now();
    let entries: Vec<_> = metas
        .iter()
        .zip(&digests)
        .map(|((p, m), d)| (p.clone(), m.clone(), *d))
        .collect();
    store.record_file_hashes(&entries).expect("record");
    eprintln!("record_file_hashes: {n} in one call: {:.1} ms", ms(t));
    let t = Instant::now();
    for (p, m) in &metas {
        store.cached_file_hash(p, m).expect("cached");
    }
    eprintln!("cached_file_hash: {:.1} us each", ms(t) * 1000.0 / n as f64);

    let t = Instant::now();
    let gc = store.gc(false).expect("gc");
    eprintln!(
        "gc (nothing rooted): removed {} outputs, {} blobs, {} MB in {:.0} ms",
        gc.outputs_removed,
        gc.blobs_removed,
        gc.bytes_freed / 1_000_000,
        ms(t)
    );
}
