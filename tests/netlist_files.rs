//! Every netlist shipped in `netlists/` parses.

use std::path::Path;

use circsnn::netlist::{parse_file, Card};

#[test]
fn every_shipped_netlist_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("netlists");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("cir") {
            continue;
        }
        let netlist = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            netlist.title.starts_with(&format!("* {name}")),
            "{name}: title {:?}",
            netlist.title
        );
        assert!(
            netlist.cards.iter().any(|c| matches!(c, Card::Tran { .. })),
            "{name} has no .tran"
        );
        names.push(name);
    }
    names.sort();
    for expected in [
        "lif.cir",
        "lif_sine.cir",
        "mif.cir",
        "mif2.cir",
        "mif2_sine.cir",
        "mif_sine.cir",
        "rc.cir",
        "rlc.cir",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing netlists/{expected}"
        );
    }
}

#[test]
fn neuron_netlists_declare_input_and_spike_rule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("netlists");
    for name in [
        "lif.cir",
        "mif.cir",
        "mif2.cir",
        "lif_sine.cir",
        "mif_sine.cir",
        "mif2_sine.cir",
    ] {
        let netlist = parse_file(&dir.join(name)).unwrap();
        let neuron = netlist.cards.iter().find_map(|c| match c {
            Card::Neuron { params, .. } => Some(params),
            _ => None,
        });
        let input = neuron
            .and_then(|p| p.iter().find(|a| a.name == "input"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            input.value,
            circsnn::netlist::Expr::Var("mem".into()),
            "{name}"
        );
        assert!(
            netlist
                .cards
                .iter()
                .any(|c| matches!(c, Card::Spike { node, .. } if node == "mem")),
            "{name}"
        );
    }
}
