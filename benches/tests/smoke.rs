//! The CI smoke run: every workload with `--smoke` on both stores, through the real binary
//! (server children included), and its tables checked for the expected rows and sane values.
//!
//! With `CI=true`, PostgreSQL and NATS must be there (the binary fails otherwise); elsewhere
//! the PostgreSQL rows (and the NATS row) are required only when those servers answered.

use std::process::Command;

use serde_json::Value;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Runs `benches all --smoke --store both` and returns its rows.
fn smoke_rows() -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("rows.json");
    let output = Command::new(env!("CARGO_BIN_EXE_benches"))
        .args(["all", "--smoke", "--store", "both", "--json"])
        .arg(&json)
        .output()
        .expect("run the benches binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "benches failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for title in [
        "### append",
        "### hot",
        "### rebuild",
        "### query",
        "### freshness",
        "### replay",
    ] {
        assert!(stdout.contains(title), "no {title} table in\n{stdout}");
    }
    let rows: Value = serde_json::from_slice(&std::fs::read(&json).expect("rows written"))
        .expect("rows are JSON");
    rows.as_array().expect("an array of rows").clone()
}

fn rows_of<'a>(rows: &'a [Value], workload: &str, store: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["workload"] == workload && r["store"] == store)
        .collect()
}

fn find<'a>(rows: &[&'a Value], variant_part: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["variant"].as_str().unwrap().contains(variant_part))
        .unwrap_or_else(|| panic!("no row {variant_part:?} in {rows:#?}"))
}

fn has_ratio(row: &Value, to: &str) {
    let ratios = row["ratios"].as_array().expect("ratios");
    let ratio = ratios
        .iter()
        .find(|r| r["to"] == to)
        .unwrap_or_else(|| panic!("no ratio to {to:?} in {row:#}"));
    assert!(ratio["value"].as_f64().unwrap() > 0.0, "{row:#}");
}

fn server_measured(row: &Value) {
    assert!(
        row["server_rss_mib"].as_f64().is_some_and(|m| m > 1.0),
        "no server peak RSS in {row:#}"
    );
}

#[test]
fn every_workload_runs_on_both_stores_with_sane_numbers() {
    let rows = smoke_rows();
    // every row: something measured, percentiles in order
    for row in &rows {
        assert!(row["ops"].as_u64().unwrap() > 0, "{row:#}");
        assert!(row["throughput"].as_f64().unwrap() > 0.0, "{row:#}");
        if let Some(l) = row["latency"].as_object() {
            let p = |k: &str| l[k].as_f64().unwrap();
            assert!(
                0.0 < p("p50")
                    && p("p50") <= p("p95")
                    && p("p95") <= p("p99")
                    && p("p99") <= p("max"),
                "{row:#}"
            );
        }
    }
    let postgres_ran = rows.iter().any(|r| r["store"] == "postgres");
    assert!(postgres_ran || !in_ci(), "CI must run PostgreSQL");
    let stores: &[&str] = if postgres_ran {
        &["sqlite", "postgres"]
    } else {
        &["sqlite"]
    };
    for &store in stores {
        let append = rows_of(&rows, "append", store);
        let engines: Vec<_> = append
            .iter()
            .filter(|r| r["variant"] == "engine (gRPC)")
            .collect();
        assert_eq!(engines.len(), 2, "clients 1 and 4 on {store}");
        for engine in engines {
            server_measured(engine);
            has_ratio(engine, "raw INSERT");
            if store == "postgres" {
                has_ratio(engine, "cqrs-es");
            }
        }

        let hot = rows_of(&rows, "hot", store);
        assert_eq!(hot.len(), 9, "3 variants × 3 lengths on {store}");
        for variant in [
            "no snapshots, stream 100",
            "snapshot every 100, stream 100",
            "snapshot every 100 + aggregate cache, stream 100",
        ] {
            let row = find(&hot, variant);
            server_measured(row);
            has_ratio(row, "p50 vs stream 10");
        }

        let rebuild = rows_of(&rows, "rebuild", store);
        assert_eq!(rebuild.len(), 3, "{rebuild:#?}");
        for row in &rebuild {
            assert_eq!(row["ops"], 2_000, "every generated event, {row:#}");
        }
        for variant in ["catch-up", "blue-green rebuild"] {
            let row = find(&rebuild, variant);
            server_measured(row);
            has_ratio(row, "plain scan");
        }

        let query = rows_of(&rows, "query", store);
        assert_eq!(query.len(), 3, "{query:#?}");
        let loaded = find(&query, "writers");
        has_ratio(loaded, "p99 vs idle");
        assert!(loaded["latency"].is_object(), "{loaded:#}");

        let freshness = rows_of(&rows, "freshness", store);
        let model = find(&freshness, "read model");
        assert!(model["latency"].is_object(), "{model:#}");
        server_measured(model);
        let nats = freshness
            .iter()
            .find(|r| r["variant"].as_str().unwrap().contains("NATS"));
        assert!(nats.is_some() || !in_ci(), "CI must measure NATS");
        if let Some(nats) = nats {
            assert!(nats["latency"].is_object(), "{nats:#}");
        }

        let replay = rows_of(&rows, "replay", store);
        assert_eq!(replay.len(), 2, "{replay:#?}");
        has_ratio(find(&replay, "fold"), "read only");
    }
}
