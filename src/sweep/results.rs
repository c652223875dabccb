//! `results.jsonl`: one JSON object per finished point, appended; read back
//! to resume (a torn last line from an interrupted write is dropped) and
//! to merge shards.

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The finished lines of a results file, by point index. A last line
/// without its newline (the write was interrupted) is dropped, and the
/// file is rewritten without it so appends continue cleanly.
pub fn read_finished(path: &Path) -> anyhow::Result<BTreeMap<usize, serde_json::Value>> {
    let mut done = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(done);
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    for (k, line) in complete.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON line", path.display(), k + 1))?;
        let index = v["index"]
            .as_u64()
            .with_context(|| format!("{}:{}: no \"index\"", path.display(), k + 1))?
            as usize;
        done.insert(index, v);
    }
    if complete.len() != text.len() {
        std::fs::write(path, complete)
            .with_context(|| format!("cannot repair {}", path.display()))?;
    }
    Ok(done)
}

/// Append lines (each one JSON object and a newline) and flush them to disk.
pub fn append_lines(path: &Path, lines: &[serde_json::Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l)?);
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Merge shard files into one, ordered by point index; two different
/// lines for the same index are an error.
pub fn merge(inputs: &[&Path], out: &Path) -> anyhow::Result<usize> {
    let mut all: BTreeMap<usize, serde_json::Value> = BTreeMap::new();
    for p in inputs {
        for (i, v) in read_finished(p)? {
            if let Some(prev) = all.get(&i) {
                if *prev != v {
                    anyhow::bail!("{}: point {i} differs from another shard's", p.display());
                }
            }
            all.insert(i, v);
        }
    }
    let lines: Vec<serde_json::Value> = all.into_values().collect();
    if out.exists() {
        std::fs::remove_file(out).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    append_lines(out, &lines)?;
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn torn_last_line_is_dropped_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        append_lines(
            &p,
            &[json!({"index": 0, "x": 1}), json!({"index": 1, "x": 2})],
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"index\": 2, \"x\"").unwrap();
        let done = read_finished(&p).unwrap();
        assert_eq!(done.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("}\n"));
    }

    #[test]
    fn merge_orders_by_index_and_rejects_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("m"),
        );
        append_lines(&a, &[json!({"index": 2}), json!({"index": 0})]).unwrap();
        append_lines(&b, &[json!({"index": 1})]).unwrap();
        assert_eq!(merge(&[&a, &b], &out).unwrap(), 3);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "{\"index\":0}\n{\"index\":1}\n{\"index\":2}\n");
        append_lines(&b, &[json!({"index": 2, "other": true})]).unwrap();
        assert!(merge(&[&a, &b], &out).is_err());
    }
}
