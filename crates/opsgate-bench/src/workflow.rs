//! Scenario: parse and validate a generated workflow of many nodes, timing each run and its peak heap.

use std::time::Instant;

use opsgate_domain::Workflow;

use crate::alloc;

/// A DAG: each deliverable needs the startup meeting and up to three earlier deliverables
/// (deterministic), every node leads to the gate. Entries are terse so that 10,000 nodes fit the
/// 1 MiB source limit.
pub fn generate(nodes: usize) -> String {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    let deliverables = nodes.saturating_sub(2);
    let mut needed = vec![false; deliverables];
    let mut src = String::with_capacity(deliverables * 160);
    src.push_str("name: generated\nroles: {o: {description: owner}, a: {description: approver}}\n");
    src.push_str("milestones:\n  - {id: s, title: Start, meeting: startup}\ndeliverables:\n");
    for i in 0..deliverables {
        let mut needs = vec!["s".to_owned()];
        if i > 0 {
            for _ in 0..(next() % 4) {
                let j = next() % i;
                needed[j] = true;
                needs.push(format!("d{j}"));
            }
        }
        needs[1..].sort();
        needs.dedup();
        // Compact entries: 10,000 nodes must fit the 1 MiB source limit.
        src.push_str(&format!(
            "- {{id: d{i}, title: T, owner: o, approver: a, due: go_live-{}d, needs: [{}]}}\n",
            // Later deliverables are due later, so nothing is due before what it needs.
            1 + (deliverables - 1 - i) * 30 / deliverables.max(1),
            needs.join(",")
        ));
    }
    let sinks: Vec<String> = (0..deliverables)
        .filter(|&i| !needed[i])
        .map(|i| format!("d{i}"))
        .collect();
    src.push_str(&format!(
        "gate: {{id: gate, title: Gate, needs: [{}]}}\n",
        sinks.join(",")
    ));
    src
}

pub fn run(nodes: usize, runs: usize) -> anyhow::Result<()> {
    let source = generate(nodes);
    let mut times = Vec::with_capacity(runs);
    let mut peak = 0usize;
    for _ in 0..runs.max(1) {
        let before = alloc::reset_peak();
        let started = Instant::now();
        let workflow =
            Workflow::parse("generated.yaml", &source).map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(started.elapsed());
        peak = peak.max(alloc::peak() - before);
        anyhow::ensure!(
            workflow.nodes().len() == nodes,
            "generated {} nodes, wanted {nodes}",
            workflow.nodes().len()
        );
        drop(workflow);
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "workflow validation: {nodes} nodes, {:.0} KiB of YAML, {} runs",
        source.len() as f64 / 1024.0,
        times.len()
    );
    println!(
        "  time   min {:.1} ms   median {:.1} ms   max {:.1} ms   (target < 100 ms)",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    println!(
        "  memory peak heap during one validation {:.1} MiB   (target < 50 MiB)",
        mib(peak)
    );
    Ok(())
}
